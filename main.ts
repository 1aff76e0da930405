/**
 * The `baton` command line: `deno run -A main.ts <command> [flags]`.
 *
 * Commands: serve, generate, simulate, compare, capacity, profile, bench-serve,
 * train-ranker. `--help` lists every slot, its plugins and their options.
 *
 * @module
 */

import { UsageError } from "./core/errors.ts";
import { PluginError } from "./core/errors.ts";
import { builtinRegistry } from "./plugins/builtins.ts";
import { engineHelp } from "./cli/engine_flags.ts";

/** Commands, each a module under cli/ exporting `main(args): Promise<number>`. */
const COMMANDS: Record<string, { module: string; about: string }> = {
  serve: { module: "./cli/serve.ts", about: "OpenAI-compatible HTTP server" },
  generate: { module: "./cli/generate.ts", about: "complete one prompt and print it" },
  simulate: { module: "./cli/simulate.ts", about: "run a workload on a simulated GPU" },
  compare: { module: "./cli/compare.ts", about: "several policy sets on one trace, side by side" },
  capacity: { module: "./cli/capacity.ts", about: "highest request rate meeting the SLOs" },
  profile: { module: "./cli/profile.ts", about: "fit a cost profile from a real executor" },
  "bench-serve": {
    module: "./cli/bench_serve.ts",
    about: "load generator for an OpenAI-compatible server",
  },
  "train-ranker": {
    module: "./cli/train_ranker.ts",
    about: "train the learning-to-rank length ranker",
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "Usage: deno run -A main.ts <command> [flags]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([c, { about }]) => `  ${c.padEnd(width)}  ${about}`),
    "",
    engineHelp(builtinRegistry()),
  ].join("\n");
}

/** Run the command line; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    console.log(usage());
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    throw new UsageError(
      `unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(", ")}`,
    );
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    const mod = await import(entry.module);
    if (typeof mod.help === "function") console.log(mod.help());
    else console.log(usage());
    return 0;
  }
  const mod = await import(entry.module);
  return await mod.main(rest);
}

if (import.meta.main) {
  try {
    Deno.exit(await run(Deno.args));
  } catch (e) {
    if (e instanceof UsageError || e instanceof PluginError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
