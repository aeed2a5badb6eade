// The official MCP TypeScript SDK client (@modelcontextprotocol/sdk, pinned in package.json)
// signing in with OAuth, driven by tests/clients/test_clients_sdk_oauth.py.
//
// Usage: node sdk_oauth_client.mjs <mcp url> <api key>
// The script is an OAuthClientProvider (in-memory storage) whose redirectToAuthorization plays
// the person at the sign-in page with fetch: GET the page (keeping its cookie), POST the hidden
// fields back with api_key=<key> and decision=approve, read code, state and iss from the
// redirect.  Then the SDK's documented pattern: connect -> UnauthorizedError -> finishAuth(code)
// -> connect a new transport; tools/list and tools/call echo.
// Output (stdout, one JSON object):
//   {"signin": {"status", "location", "code", "state", "stateMatches", "iss", "refused",
//               "message"}, "firstConnect": {...error}, "registered": bool, "tokens": {...}|null,
//    "connected": bool, "error": {...}|null, "tools": [...], "echo": {...}}

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mcpUrl, apiKey] = process.argv.slice(2);
const REDIRECT_URL = "http://127.0.0.1:8765/callback"; // never listened on: the script reads Location

function describe(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    code: error?.code ?? null,
    message: String(error?.message ?? error),
  };
}

function unescapeHtml(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#x27;/g, "'")
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

function hiddenInputs(html) {
  const fields = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    fields[unescapeHtml(match[1])] = unescapeHtml(match[2]);
  }
  return fields;
}

const report = {
  signin: null,
  firstConnect: null,
  registered: false,
  tokens: null,
  connected: false,
  error: null,
  tools: null,
  echo: null,
};

class InMemoryProvider {
  constructor() {
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = crypto.randomUUID();
  }
  get redirectUrl() {
    return REDIRECT_URL;
  }
  get clientMetadata() {
    return {
      client_name: "SDK OAuth test client",
      redirect_uris: [REDIRECT_URL],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(information) {
    report.registered = true;
    this._client = information;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }
  codeVerifier() {
    return this._verifier;
  }
  // The person: open the page, paste the key, approve.
  async redirectToAuthorization(url) {
    const signin = { status: null, location: null, code: null, state: null, iss: null };
    report.signin = signin;
    const page = await fetch(url, { redirect: "manual" });
    signin.pageStatus = page.status;
    const cookie = page.headers
      .getSetCookie()
      .map((value) => value.split(";", 1)[0])
      .join("; ");
    const fields = hiddenInputs(await page.text());
    signin.hiddenFields = Object.keys(fields).sort();
    const answer = await fetch(new URL(url.pathname, url), {
      method: "POST",
      redirect: "manual",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Cookie: cookie,
        Origin: url.origin, // as a browser posting the form sends it
      },
      body: new URLSearchParams({ ...fields, api_key: apiKey, decision: "approve" }),
    });
    signin.status = answer.status;
    const location = answer.headers.get("location");
    if (answer.status === 302 && location) {
      const back = new URL(location);
      signin.location = `${back.origin}${back.pathname}`;
      signin.code = back.searchParams.get("code");
      signin.state = back.searchParams.get("state");
      signin.stateMatches = signin.state === this._state;
      signin.iss = back.searchParams.get("iss");
      signin.error = back.searchParams.get("error");
    } else {
      const html = await answer.text();
      signin.refused = true;
      signin.message = unescapeHtml(html.match(/<p class="error"[^>]*>([^<]*)<\/p>/)?.[1] ?? "");
      signin.keyInPage = html.includes(apiKey);
    }
  }
}

const provider = new InMemoryProvider();
const clientInfo = { name: "notes-oauth-client", version: "1.0.0" };

// 1. connect: no token yet, so the SDK discovers, registers, sends the person to sign in.
const firstTransport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
  authProvider: provider,
});
try {
  await new Client(clientInfo).connect(firstTransport);
  report.firstConnect = { connected: true };
} catch (error) {
  report.firstConnect = {
    unauthorized: error instanceof UnauthorizedError,
    error: describe(error),
  };
  // 2. finishAuth with the code from the redirect, on the transport that started it.
  const code = report.signin?.code;
  if (error instanceof UnauthorizedError && code && report.signin.stateMatches) {
    try {
      await firstTransport.finishAuth(code);
    } catch (finishError) {
      report.error = describe(finishError);
    }
  }
}

const tokens = provider.tokens();
if (tokens) {
  report.tokens = {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in ?? null,
    has_access_token: Boolean(tokens.access_token),
    has_refresh_token: Boolean(tokens.refresh_token),
    access_token_is_the_key: tokens.access_token === apiKey,
  };
  // 3. a new transport: the SDK sends the token as a Bearer.
  const client = new Client(clientInfo);
  try {
    await client.connect(
      new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }),
    );
    report.connected = true;
    report.tools = (await client.listTools()).tools.map((tool) => tool.name);
    report.echo = await client.callTool({ name: "echo", arguments: { text: "via oauth" } });
    await client.close();
  } catch (error) {
    report.error = describe(error);
  }
}

process.stdout.write(JSON.stringify(report) + "\n");
