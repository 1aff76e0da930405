/**
 * A progress bar on stderr, drawn only when stderr is a terminal (none when piped).
 *
 * @module
 */

/** Something to report progress to. */
export interface Progress {
  /** `done` of `total` units finished. */
  update(done: number, total: number): void;
  /** Clear the bar. */
  end(): void;
}

const encoder = new TextEncoder();

/** A bar labelled `label`, redrawn at most every 100 ms; a no-op when stderr is not a TTY. */
export function progressBar(label: string, force?: boolean): Progress {
  const tty = force ?? Deno.stderr.isTerminal();
  if (!tty) return { update() {}, end() {} };
  let last = 0;
  let drawn = false;
  const draw = (done: number, total: number) => {
    const width = 30;
    const f = total > 0 ? Math.min(1, done / total) : 0;
    const full = Math.round(f * width);
    const bar = "#".repeat(full) + "-".repeat(width - full);
    Deno.stderr.writeSync(
      encoder.encode(`\r${label} [${bar}] ${done}/${total} ${(f * 100).toFixed(0)}%`),
    );
    drawn = true;
  };
  return {
    update(done, total) {
      const now = performance.now();
      if (now - last < 100 && done < total) return;
      last = now;
      draw(done, total);
    },
    end() {
      if (drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    },
  };
}
