/**
 * Device time of a GPU operation measured from the host, despite Deno's read-back floor
 * (about 10 ms per `mapAsync`, deno-webgpu-wasm-notes 0.1): the operation is repeated n
 * times in one submission, n growing until the work dwarfs the floor's jitter, and the
 * one-repetition time is subtracted.
 *
 * @module
 */

/**
 * Seconds per repetition of `run(n)` (which submits n repetitions and waits for them).
 * Stops growing n once the extra work reaches `minWork` seconds or `budget` is spent.
 */
export async function deviceSeconds(
  run: (n: number) => Promise<unknown>,
  budget = 5,
  minWork = 0.05,
): Promise<number> {
  const time = async (n: number) => {
    const t = performance.now();
    await run(n);
    return (performance.now() - t) / 1000;
  };
  const start = performance.now();
  await run(1); // warm-up: pipelines, caches
  const ones = [await time(1), await time(1), await time(1)].sort((a, b) => a - b);
  const one = ones[1];
  let n = 2;
  for (;;) {
    const t = await time(n);
    const spent = (performance.now() - start) / 1000;
    if (t - one >= minWork || n >= 4096 || spent + 4 * t > budget) {
      return Math.max(t - one, 0) / (n - 1) || t / n;
    }
    n *= 4;
  }
}
