# Cross builds: the header-only libraries edgeq uses (nlohmann/json, CLI11) from the build
# machine's /usr/include, through a staging folder of symlinks so that no other host
# header (glibc, libstdc++ of the host) can shadow the target's.
set(_stage ${CMAKE_BINARY_DIR}/host_header_only)
file(MAKE_DIRECTORY ${_stage})
foreach(_pair "nlohmann;nlohmann/json.hpp" "CLI;CLI/CLI.hpp")
  list(GET _pair 0 _dir)
  list(GET _pair 1 _probe)
  find_path(_found_${_dir} ${_probe} PATHS /usr/include /usr/local/include NO_CMAKE_FIND_ROOT_PATH NO_DEFAULT_PATH)
  if(NOT _found_${_dir})
    message(FATAL_ERROR "cross build: ${_probe} not found on the build machine (apt-get install nlohmann-json3-dev libcli11-dev)")
  endif()
  file(CREATE_LINK ${_found_${_dir}}/${_dir} ${_stage}/${_dir} SYMBOLIC)
endforeach()
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
target_include_directories(nlohmann_json::nlohmann_json INTERFACE ${_stage})
add_library(CLI11::CLI11 INTERFACE IMPORTED)
target_include_directories(CLI11::CLI11 INTERFACE ${_stage})
