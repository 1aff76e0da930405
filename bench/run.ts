/**
 * `deno task bench NAME [args]`: runs the benchmark in `bench/NAME.ts` (its `main`);
 * `deno task bench experiments/NAME` runs a paper experiment.
 *
 * @module
 */

const here = new URL(".", import.meta.url);
const list = (dir: string) =>
  [...Deno.readDirSync(new URL(dir, here))]
    .filter((e) =>
      e.isFile && e.name.endsWith(".ts") && e.name !== "run.ts" && e.name !== "common.ts"
    )
    .map((e) => (dir === "." ? "" : `${dir}/`) + e.name.slice(0, -3))
    .sort();
const known = [...list("."), ...list("experiments")];
const [name, ...args] = Deno.args;
if (!name || !known.includes(name)) {
  console.error(`usage: deno task bench <name> [args]\n  ${known.join("\n  ")}`);
  Deno.exit(name ? 2 : 0);
}
const mod = await import(`./${name}.ts`);
await mod.main(args);
