/**
 * Small HTTP helpers: reading a JSON body under a size limit, JSON responses, and bearer
 * key checks that take the same time whatever the key.
 *
 * @module
 */

import { badRequest, tooLarge } from "./errors.ts";

/** Read and parse a JSON body; 413 past `limit` bytes, 400 when it is not JSON. */
export async function readJsonBody(req: Request, limit: number): Promise<unknown> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge(limit);
  }
  const text = await readText(req, limit);
  if (text.trim() === "") throw badRequest("The request body is empty; send a JSON object.");
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw badRequest(`The request body is not valid JSON (${why}); send a JSON object.`);
  }
}

async function readText(req: Request, limit: number): Promise<string> {
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    parts.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw badRequest("The request body is not valid UTF-8; send a JSON object.");
  }
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

const encoder = new TextEncoder();

/**
 * Whether the request carries `Authorization: Bearer <key>`. The comparison looks at every
 * byte, so its time does not reveal how much of a guess was right.
 */
export function hasBearer(req: Request, key: string): boolean {
  const header = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (m === null) return false;
  const a = encoder.encode(m[1]);
  const b = encoder.encode(key);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}
