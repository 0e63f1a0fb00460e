import { connect } from 'node:net';

/** One HTTP request written byte for byte, as no well-behaved client would send it. */
export interface RawRequest {
  method: string;
  path: string;
  /** Header lines as sent; Host and Connection: close are added unless given. */
  headers?: Array<[string, string | Buffer]>;
  body?: string | Buffer;
  /** Add a Content-Length for the body (default: yes, unless a Content-Length or Transfer-Encoding header is given). */
  contentLength?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON, or undefined if it is not JSON. */
  json: unknown;
}

const CRLF = '\r\n';

/** The request's bytes. */
export function rawBytes(request: RawRequest): Buffer {
  const headers = request.headers ?? [];
  const has = (name: string) => headers.some(([key]) => key.toLowerCase() === name);
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body, 'utf8');
  const lines: Buffer[] = [Buffer.from(`${request.method} ${request.path} HTTP/1.1${CRLF}`, 'latin1')];
  const line = (name: string, value: string | Buffer) =>
    Buffer.concat([Buffer.from(`${name}: `, 'latin1'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'), Buffer.from(CRLF)]);
  if (!has('host')) lines.push(line('Host', '127.0.0.1'));
  if (!has('connection')) lines.push(line('Connection', 'close'));
  for (const [name, value] of headers) lines.push(line(name, value));
  const addLength = request.contentLength ?? (!has('content-length') && !has('transfer-encoding') && body.length > 0);
  if (addLength) lines.push(line('Content-Length', String(body.length)));
  lines.push(Buffer.from(CRLF), body);
  return Buffer.concat(lines);
}

/** Decodes a chunked body (the server's, which is well-formed). */
function unchunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const end = body.indexOf(CRLF, at);
    if (end < 0) break;
    const size = Number.parseInt(body.subarray(at, end).toString('latin1'), 16);
    if (!size) break;
    parts.push(body.subarray(end + 2, end + 2 + size));
    at = end + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Sends the request on a new connection and reads the answer until the server closes it. */
export async function sendRaw(port: number, request: RawRequest | Buffer, timeoutMs = 15_000): Promise<RawResponse> {
  const bytes = Buffer.isBuffer(request) ? request : rawBytes(request);
  const received = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms (got ${Buffer.concat(chunks).length} bytes)`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A server that answers early (413, 431) may close before reading everything: ignore EPIPE/ECONNRESET then.
    socket.on('error', (err) => {
      if (chunks.length === 0) {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    // No half-close after the request: Node's server, seeing the client's end, aborts a request
    // whose answer is still being prepared. Every request says Connection: close, so the server ends it.
    socket.write(bytes);
  });
  const headEnd = received.indexOf(`${CRLF}${CRLF}`);
  if (headEnd < 0) throw new Error(`no HTTP answer: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`);
  const [statusLine = '', ...headerLines] = received.subarray(0, headEnd).toString('latin1').split(CRLF);
  const status = Number(statusLine.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const headerLine of headerLines) {
    const colon = headerLine.indexOf(':');
    headers[headerLine.slice(0, colon).trim().toLowerCase()] = headerLine.slice(colon + 1).trim();
  }
  let body = received.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.includes('chunked')) body = unchunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}
