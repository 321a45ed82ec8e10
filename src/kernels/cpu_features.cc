// placeholder until dispatch lands
namespace edgeq {}
