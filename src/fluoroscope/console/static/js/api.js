// The X-Ray REST API of this server: every operation is a POST at the URL root with a
// JSON body; errors carry {"__type", "message"}. The console reads nothing else.
//
// A server that requires credentials accepts an API key as `Authorization: Bearer KEY`.
// The key the user types is kept in this tab's sessionStorage (never in a cookie, so no
// other site can make the browser send it) and sent with every call; when the server
// refuses it (or asks for one), the handler set with onAuthRequired() is called.

const KEY_ITEM = 'fluoroscope.apiKey';
const AUTH_ERRORS = new Set([
  'MissingAuthenticationTokenException',
  'UnrecognizedClientException',
  'IncompleteSignatureException',
  'InvalidSignatureException',
]);
let authRequired = null;

/** The handler called (with the ApiError) when the server wants an API key. */
export function onAuthRequired(handler) {
  authRequired = handler;
}

/** Keep `key` for this tab's later calls (an empty key forgets it). */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

export class ApiError extends Error {
  constructor(type, message, status) {
    super(message);
    this.type = type;
    this.status = status;
    const at = /at position (\d+)/.exec(message);
    this.position = at ? Number(at[1]) : null; // filter syntax errors point at a character
  }
}

/** POST /{op} with body; resolves to the parsed answer or rejects with ApiError. */
export async function xray(op, body = {}, { signal } = {}) {
  let response;
  try {
    const headers = { 'content-type': 'application/json' };
    const key = sessionStorage.getItem(KEY_ITEM);
    if (key) headers.authorization = `Bearer ${key}`;
    response = await fetch(`/${op}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('NetworkError', `the server did not answer (${err.message})`, 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const type = (data && data.__type) || response.headers.get('x-amzn-ErrorType') || 'Error';
    const message = (data && (data.message || data.Message)) || `HTTP ${response.status}`;
    const error = new ApiError(type, message, response.status);
    if (response.status === 403 && AUTH_ERRORS.has(type)) {
      setApiKey('');
      if (authRequired) authRequired(error);
    }
    throw error;
  }
  return data || {};
}

/**
 * Trace summaries in [start, end] (epoch seconds) matching filter, newest first, following
 * NextToken until `limit` are collected. Resolves to {summaries, nextToken, scanned}.
 * onPage(collected so far), if given, is called after each page but the last.
 */
export async function summaries({ start, end, filter, limit = 1000, token = null, signal, onPage } = {}) {
  const out = [];
  let next = token;
  let scanned = 0;
  do {
    const body = { StartTime: start, EndTime: end };
    if (filter && filter.trim()) body.FilterExpression = filter;
    if (next) body.NextToken = next;
    const page = await xray('TraceSummaries', body, { signal });
    out.push(...(page.TraceSummaries || []));
    scanned += page.TracesProcessedCount || 0;
    next = page.NextToken || null;
    if (onPage && next && out.length < limit) onPage(out);
  } while (next && out.length < limit);
  return { summaries: out, nextToken: next, scanned };
}

/** One trace: {id, duration, documents: [parsed segment documents]} or null if unknown. */
export async function trace(id, { signal } = {}) {
  const answer = await xray('Traces', { TraceIds: [id] }, { signal });
  const found = (answer.Traces || [])[0];
  if (!found) return null;
  return {
    id: found.Id,
    duration: found.Duration,
    documents: (found.Segments || []).map((seg) => JSON.parse(seg.Document)),
  };
}

/** One trace's log lines: GET /api/traces/<id>/logs (see server/tracelogs.py). */
export async function traceLogs(id, { signal } = {}) {
  const headers = { accept: 'application/json' };
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(`/api/traces/${encodeURIComponent(id)}/logs`, { headers, signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('NetworkError', `the server did not answer (${err.message})`, 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError((data && data.__type) || 'Error', (data && data.message) || `HTTP ${response.status}`, response.status);
  }
  return data || { lines: [] };
}

/**
 * The CloudWatch Logs API of this server (POST / with X-Amz-Target, awsJson1_1): resolves
 * to the answer or rejects with ApiError (a MalformedQueryException's location, when the
 * server gives one, is kept as error.location = {startCharOffset, endCharOffset}).
 */
export async function logs(op, body = {}, { signal } = {}) {
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Logs_20140328.${op}` };
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch('/', { method: 'POST', headers, body: JSON.stringify(body), signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('NetworkError', `the server did not answer (${err.message})`, 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const type = String((data && data.__type) || 'Error').split('#').pop();
    const error = new ApiError(type, (data && (data.message || data.Message)) || `HTTP ${response.status}`, response.status);
    error.location = data && data.queryCompileError ? data.queryCompileError.location : null;
    error.reason = data && data.queryCompileError ? data.queryCompileError.message : null;
    throw error;
  }
  return data || {};
}
