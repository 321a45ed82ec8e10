// The official OpenAI Node client, unchanged, against `edgeq serve` on the shipped
// stories260K model. Usage: node test.mjs BASE_URL (run.sh starts the server).
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.argv[2];
const client = new OpenAI({ baseURL, apiKey: 'test-key', maxRetries: 0 });
const model = 'stories260K';
let passed = 0;
async function check(name, fn) {
  await fn();
  passed++;
  console.log(`ok - ${name}`);
}

await check('models.list()', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

let chatText = '';
await check('chat.completions.create (non-streaming)', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a story about a cat.' }], max_tokens: 24, temperature: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  chatText = r.choices[0].message.content;
  assert.ok(chatText.length > 0);
  assert.equal(r.usage.completion_tokens, 24);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 24);
});

await check('chat.completions.create (streaming, same text, usage chunk)', async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a story about a cat.' }], max_tokens: 24, temperature: 0,
    stream: true, stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, chatText);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 24);
});

let completionText = '';
await check('completions.create (non-streaming)', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  completionText = r.choices[0].text;
  assert.match(completionText, /^, there was a little girl/);
});

await check('completions.create (streaming)', async () => {
  const stream = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, completionText);
});

await check('error: unknown model -> NotFoundError with an OpenAI error body', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
});

await check('error: bad request -> BadRequestError naming the field', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 9 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature');
});

await check('error: wrong API key -> AuthenticationError', async () => {
  const bad = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

console.log(`openai client ${OpenAI.VERSION ?? ''}: ${passed} checks passed`);
