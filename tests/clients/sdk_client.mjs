// The official MCP TypeScript SDK client (@modelcontextprotocol/sdk, pinned in package.json),
// driven by tests/clients/test_node_clients.py.
//
// Input: one JSON argument {"url": ..., "sessions": [{"key": "..." | null, "steps": [...]}]}
// where a step is {"list": true} or {"call": "<tool>", "arguments": {...}}.  The sessions run
// one after the other, each step in its session, whatever the step before it did.
// Output (stdout, one JSON object): {"sessions": [{"connected": bool, "error": {...} | null,
// "protocolVersion": "...", "steps": [{"ok": true, "result": ...} | {"ok": false, "error": ...}]}]}
// An error is {"name", "code", "message", "data"}: what the SDK raised, as it raised it.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

// --- docs/clients.md: begin
async function connect(url, apiKey) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { "X-API-Key": apiKey } },
  });
  const client = new Client({ name: "notes-client", version: "1.0.0" });
  await client.connect(transport);
  return client;
}
// --- docs/clients.md: end

function describe(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    code: error?.code ?? null,
    message: String(error?.message ?? error),
    data: error?.data ?? null,
  };
}

async function runSession(url, session) {
  const report = { connected: false, error: null, protocolVersion: null, steps: [] };
  let client;
  try {
    // A missing key is a session without the header at all, not an empty one.
    client =
      session.key === null
        ? await (async () => {
            const c = new Client({ name: "notes-client", version: "1.0.0" });
            await c.connect(new StreamableHTTPClientTransport(new URL(url)));
            return c;
          })()
        : await connect(url, session.key);
    report.connected = true;
    report.protocolVersion = client.transport?.protocolVersion ?? null;
  } catch (error) {
    report.error = describe(error);
    return report;
  }
  for (const step of session.steps ?? []) {
    try {
      const result = step.list
        ? await client.listTools()
        : await client.callTool({ name: step.call, arguments: step.arguments ?? {} });
      report.steps.push({ ok: true, result });
    } catch (error) {
      report.steps.push({ ok: false, error: describe(error) });
    }
  }
  await client.close();
  return report;
}

const input = JSON.parse(process.argv[2]);
const sessions = [];
for (const session of input.sessions) {
  sessions.push(await runSession(input.url, session));
}
process.stdout.write(JSON.stringify({ sessions }) + "\n");
