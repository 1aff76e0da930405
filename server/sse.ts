/**
 * Server-sent events: a byte stream the handler pushes `data:` lines into, which tells
 * its owner when the client went away (so the request can be aborted and its KV freed).
 *
 * @module
 */

const encoder = new TextEncoder();

/** Headers of an event stream. */
export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  "X-Accel-Buffering": "no",
};

/** One event stream. Writes after close or cancel are dropped. */
export class SseStream {
  /** The body to put in the Response. */
  readonly body: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;
  #onCancel: (() => void) | undefined;

  /** `onCancel` runs once when the client disconnects before {@link close}. */
  constructor(onCancel?: () => void) {
    this.#onCancel = onCancel;
    this.body = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
      },
      cancel: () => {
        if (!this.#open) return;
        this.#open = false;
        const f = this.#onCancel;
        this.#onCancel = undefined;
        f?.();
      },
    });
  }

  /** Whether events can still be sent. */
  get open(): boolean {
    return this.#open;
  }

  /** Send `data: <payload>\n\n` (payload already serialized). */
  data(payload: string): void {
    if (!this.#open) return;
    this.#controller.enqueue(encoder.encode(`data: ${payload}\n\n`));
  }

  /** Send several events in one write. */
  dataMany(payloads: string[]): void {
    if (!this.#open || payloads.length === 0) return;
    let s = "";
    for (const p of payloads) s += `data: ${p}\n\n`;
    this.#controller.enqueue(encoder.encode(s));
  }

  /** Send `data: [DONE]` and end the stream. */
  done(): void {
    if (!this.#open) return;
    this.#controller.enqueue(encoder.encode("data: [DONE]\n\n"));
    this.close();
  }

  /** End the stream. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#onCancel = undefined;
    try {
      this.#controller.close();
    } catch {
      // Already errored by the runtime (connection gone).
    }
  }
}
