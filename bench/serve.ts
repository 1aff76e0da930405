/**
 * `deno task bench serve`: what the server costs. Streamed tokens per second and p99
 * added latency at 1, 100 and 1,000 concurrent streams, Baton (engine + `sim` executor
 * on the wall clock without sleeping, i.e. zero-cost steps) against a bare `Deno.serve`
 * SSE endpoint that streams the same OpenAI chunks in batched steps, in the same run.
 *
 * Each server runs in a child process (`--child bare|baton`); this process is the client.
 * Target: at 1,000 streams Baton keeps at least 80% of the bare endpoint's throughput.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { percentile } from "../server/loadgen/metrics.ts";

/** Concurrency levels and tokens per stream at each. */
const LEVELS: [number, number][] = [[1, 1000], [100, 100], [1000, 40]];

interface LevelResult {
  streams: number;
  tokens: number;
  seconds: number;
  tokPerS: number;
  p99TtftMs: number;
  p99ItlMs: number;
  failed: number;
}

/** Run the benchmark (`--quick` for a short run). */
export async function main(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const levels = quick
    ? LEVELS.map(([c, t]) => [c, Math.max(10, Math.round(t / 5))] as [number, number])
    : LEVELS;
  const rows: { streams: number; bare: LevelResult; baton: LevelResult }[] = [];
  const bare = await spawnServer("bare");
  const baton = await spawnServer("baton");
  try {
    for (const [streams, tokens] of levels) {
      // Warm both up, then measure them back to back.
      await load(bare.url, Math.min(streams, 50), 10);
      await load(baton.url, Math.min(streams, 50), 10);
      // Two rounds in alternating order; the faster of each (least disturbed by other load
      // on the machine) is kept.
      const b1 = await load(bare.url, streams, tokens);
      const f1 = await load(baton.url, streams, tokens);
      const f2 = await load(baton.url, streams, tokens);
      const b2 = await load(bare.url, streams, tokens);
      rows.push({ streams, bare: faster(b1, b2), baton: faster(f1, f2) });
    }
  } finally {
    await bare.stop();
    await baton.stop();
  }
  console.log(
    "streams  tokens/stream   bare tok/s  baton tok/s  ratio   p99 TTFT bare/baton ms   p99 ITL bare/baton ms  added p99 ITL ms",
  );
  for (const r of rows) {
    const ratio = r.baton.tokPerS / r.bare.tokPerS;
    console.log(
      [
        String(r.streams).padStart(7),
        String(r.bare.tokens / r.streams).padStart(14),
        r.bare.tokPerS.toFixed(0).padStart(12),
        r.baton.tokPerS.toFixed(0).padStart(12),
        ratio.toFixed(2).padStart(6),
        `${r.bare.p99TtftMs.toFixed(1)} / ${r.baton.p99TtftMs.toFixed(1)}`.padStart(24),
        `${r.bare.p99ItlMs.toFixed(2)} / ${r.baton.p99ItlMs.toFixed(2)}`.padStart(22),
        (r.baton.p99ItlMs - r.bare.p99ItlMs).toFixed(2).padStart(17),
      ].join(" "),
    );
    if (r.bare.failed + r.baton.failed > 0) {
      console.log(`  failed streams: bare ${r.bare.failed}, baton ${r.baton.failed}`);
    }
  }
  const last = rows.at(-1)!;
  const cost = 1 - last.baton.tokPerS / last.bare.tokPerS;
  console.log(
    `framework cost at ${last.streams} streams: ${
      (cost * 100).toFixed(1)
    }% of the bare endpoint's throughput ` +
      `(target under 20%: ${cost < 0.2 ? "met" : "not met"})`,
  );
}

/**
 * Open `streams` concurrent streams of `tokens` tokens each and time them. The client
 * shares the machine with the server, so it reads events without parsing each one (only
 * the usage chunk is parsed).
 */
async function load(url: string, streams: number, tokens: number): Promise<LevelResult> {
  const t0 = performance.now();
  const ttfts: number[] = [];
  const itls: number[] = [];
  let total = 0;
  let failed = 0;
  const body = JSON.stringify({
    prompt: "hi",
    max_tokens: tokens,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  await Promise.all(Array.from({ length: streams }, async () => {
    const st = performance.now();
    try {
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });
      if (res.status !== 200 || !res.body) {
        failed++;
        await res.body?.cancel();
        return;
      }
      let last = -1;
      let usage = 0;
      let rest = "";
      const decoder = new TextDecoder();
      for await (const bytes of res.body) {
        const now = performance.now();
        const events = (rest + decoder.decode(bytes, { stream: true })).split("\n\n");
        rest = events.pop()!;
        for (const e of events) {
          if (e.includes('"usage":{')) usage = JSON.parse(e.slice(6)).usage.completion_tokens;
          else if (e.includes('"text":"') && !e.includes('"text":""')) {
            if (last < 0) ttfts.push(now - st);
            else itls.push(now - last);
            last = now;
          }
        }
      }
      total += usage;
      if (usage !== tokens) failed++;
    } catch {
      failed++;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return {
    streams,
    tokens: total,
    seconds,
    tokPerS: total / seconds,
    p99TtftMs: percentile(ttfts, 99),
    p99ItlMs: percentile(itls, 99),
    failed,
  };
}

function faster(a: LevelResult, b: LevelResult): LevelResult {
  return a.tokPerS >= b.tokPerS ? a : b;
}

async function spawnServer(
  kind: "bare" | "baton",
): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", kind],
    stdout: "piped",
    stderr: "inherit",
    stdin: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the ${kind} server exited before listening`);
    buf += value;
  }
  const port = Number(/PORT (\d+)/.exec(buf)?.[1]);
  reader.releaseLock();
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await child.stdin.close();
      await child.stdout.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Child: serve until stdin closes. */
async function child(kind: string): Promise<void> {
  let stop: () => Promise<void>;
  let port: number;
  if (kind === "bare") {
    const s = bareServer();
    port = s.addr.port;
    stop = () => s.shutdown();
  } else {
    const { Engine } = await import("../core/engine.ts");
    const { presetModel } = await import("../core/model/load.ts");
    const { builtinRegistry } = await import("../plugins/builtins.ts");
    const { serveEngine } = await import("../server/mod.ts");
    const registry = builtinRegistry();
    const engine = await Engine.create({
      model: presetModel("small"),
      registry,
      numBlocks: 8192,
      plugins: {
        executor: { name: "sim" },
        batcher: { name: "vllm", options: { maxNumSeqs: 1024 } },
      },
      log: () => {},
    });
    const server = await serveEngine(engine, { port: 0, log: () => {} });
    port = server.port;
    stop = async () => {
      await server.shutdown({ graceSeconds: 0 });
      await engine.close();
    };
  }
  console.log(`PORT ${port}`);
  // Wait for the parent to close stdin.
  for await (const _ of Deno.stdin.readable) { /* drain */ }
  await stop();
}

/**
 * The baseline: `Deno.serve` streaming OpenAI completion chunks. Like an engine, it emits
 * one token to every open stream per step and yields to I/O between steps.
 */
function bareServer(): Deno.HttpServer<Deno.NetAddr> {
  const encoder = new TextEncoder();
  interface Stream {
    c: ReadableStreamDefaultController<Uint8Array>;
    left: number;
    sent: number;
    head: string;
  }
  const active = new Set<Stream>();
  let running = false;
  let serial = 0;
  const loop = async () => {
    running = true;
    while (active.size > 0) {
      for (const s of active) {
        s.c.enqueue(
          encoder.encode(
            `data: ${s.head}{"index":0,"text":"x","logprobs":null,"finish_reason":null}]}\n\n`,
          ),
        );
        s.sent++;
        if (--s.left === 0) {
          s.c.enqueue(encoder.encode(
            `data: ${s.head}{"index":0,"text":"","logprobs":null,"finish_reason":"length"}]}\n\n` +
              `data: ${s.head}],"usage":${
                JSON.stringify({
                  prompt_tokens: 2,
                  completion_tokens: s.sent,
                  total_tokens: s.sent + 2,
                })
              }}\n\n` +
              "data: [DONE]\n\n",
          ));
          s.c.close();
          active.delete(s);
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    running = false;
  };
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = await req.json();
    const id = `cmpl-${serial++}`;
    const head = `{"id":"${id}","object":"text_completion","created":${
      Math.floor(Date.now() / 1000)
    },"model":"bare","choices":[`;
    const stream: Partial<Stream> = { left: body.max_tokens, sent: 0, head };
    const rs = new ReadableStream<Uint8Array>({
      start(c) {
        stream.c = c;
        active.add(stream as Stream);
        if (!running) loop();
      },
      cancel() {
        active.delete(stream as Stream);
      },
    });
    return new Response(rs, { headers: { "Content-Type": "text/event-stream" } });
  });
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--child");
  if (i >= 0) await child(Deno.args[i + 1]);
  else await main(Deno.args);
}
