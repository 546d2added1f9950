// The official openai Node SDK against aurous-mock, as the vendor's drop-in guide shows (base URL + key).
// Run by tests/sdk/test_openai_node.py: AUROUS_BASE_URL, AUROUS_API_KEY in the environment; prints one JSON report.
import OpenAI from "openai";

const baseURL = `${process.env.AUROUS_BASE_URL}/v1`;
const apiKey = process.env.AUROUS_API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const CHAT = "aurous-grow-2.0-pro";
const EMBED = "aurous-embed-vision-1.0";
const report = {};

async function typedError(name, call) {
  try {
    await call();
    report[name] = { raised: null };
  } catch (err) {
    report[name] = { raised: err.constructor.name, status: err.status ?? null, code: err.code ?? null };
  }
}

// Embeddings: the SDK's default asks for base64 and decodes it; an explicit "float" is passed through.
const byDefault = await client.embeddings.create({ model: EMBED, input: "The quick brown fox" });
report.embedding_default = byDefault.data[0].embedding.slice();
const asFloats = await client.embeddings.create({ model: EMBED, input: "The quick brown fox", encoding_format: "float" });
report.embedding_float = asFloats.data[0].embedding;

const models = [];
for await (const model of client.models.list()) models.push(model.id);
report.models = models.sort();

const chat = await client.chat.completions.create({
  model: CHAT,
  messages: [{ role: "user", content: "Say hello" }],
  max_tokens: 32,
});
report.chat = { id: chat.id, content: chat.choices[0].message.content, usage: chat.usage };

for (const includeUsage of [false, true]) {
  const stream = await client.chat.completions.create({
    model: CHAT,
    messages: [{ role: "user", content: "Tell me a short story" }],
    max_tokens: 40,
    stream: true,
    ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  report[`stream_usage_${includeUsage}`] = {
    first_role: chunks[0].choices[0]?.delta?.role ?? null,
    text: chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""),
    finish_reasons: chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean),
    usage: chunks[chunks.length - 1].usage ?? null,
  };
}

const tool = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const called = await client.chat.completions.create({
  model: CHAT,
  messages: [{ role: "user", content: "Weather in Tokyo?" }],
  tools: [tool],
  tool_choice: { type: "function", function: { name: "get_weather" } },
  max_tokens: 200,
});
report.tool_call = {
  finish_reason: called.choices[0].finish_reason,
  name: called.choices[0].message.tool_calls?.[0]?.function?.name ?? null,
  arguments: called.choices[0].message.tool_calls?.[0]?.function?.arguments ?? null,
};

const structured = await client.chat.completions.create({
  model: CHAT,
  messages: [{ role: "user", content: "A person" }],
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "person",
      strict: true,
      schema: {
        type: "object",
        properties: { name: { type: "string" }, age: { type: "integer" } },
        required: ["name", "age"],
        additionalProperties: false,
      },
    },
  },
  max_tokens: 400,
});
report.structured = structured.choices[0].message.content;

await typedError("auth", () =>
  new OpenAI({ baseURL, apiKey: "sk-not-an-aurous-key", maxRetries: 0 }).models.list(),
);
await typedError("bad_request", () => client.embeddings.create({ model: EMBED, input: ["a", "b"] }));
await typedError("not_found", () => client.embeddings.create({ model: "text-embedding-3-small", input: "hi" }));
const key = { headers: { "Idempotency-Key": `node-${Date.now()}` } };
await client.embeddings.create({ model: EMBED, input: "one" }, key);
await typedError("conflict", () => client.embeddings.create({ model: EMBED, input: "two" }, key));
await typedError("rate_limit", () =>
  client.embeddings.create({ model: EMBED, input: "hi" }, { headers: { "Aurous-Mock-Scenario": "tpm_rate_limit=1" } }),
);

process.stdout.write(JSON.stringify(report));
