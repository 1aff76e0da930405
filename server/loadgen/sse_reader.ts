/**
 * Read a server-sent event stream: yields each event's `data:` payload as it arrives,
 * whatever way the bytes were split into network chunks.
 *
 * @module
 */

/** The `data:` payloads of an event stream, in order. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = dataOf(event);
        if (data !== undefined) yield data;
      }
    }
    buf += decoder.decode();
    const data = dataOf(buf);
    if (data !== undefined) yield data;
  } finally {
    reader.releaseLock();
  }
}

function dataOf(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith("data:")) {
      const v = line.slice(5).replace(/^ /, "");
      data = data === undefined ? v : data + "\n" + v;
    }
  }
  return data;
}
