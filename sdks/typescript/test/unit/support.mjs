// A fetch that answers from a script and records what it was asked.

/** A JSON answer. */
export function json(status, body, headers = {}) {
  return new Response(body === undefined ? "" : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The server's error envelope. */
export function error(status, code, message = "refused", extra = {}) {
  return json(status, { success: false, error: message, code, request_id: "req_1", ...extra }, extra.headers);
}

/** A fetch answering each call with the next of `answers` (a Response, an Error to throw,
 * or a function of the request); `calls` records every request. */
export function scripted(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    const call = {
      url: new URL(url),
      method: init.method,
      headers: init.headers,
      body: init.body === undefined ? undefined : JSON.parse(init.body),
      signal: init.signal,
    };
    calls.push(call);
    const next = answers.shift();
    if (next === undefined) throw new Error("no more scripted answers");
    const answer = typeof next === "function" ? await next(call) : next;
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch, calls };
}

/** Client options for tests: fast retries, a sandbox key. */
export const fast = { apiKey: "sk_sandbox_test", baseUrl: "http://api.test", retryBaseMs: 1, retryMaxMs: 5 };
