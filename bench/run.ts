/**
 * `deno task bench NAME [args]`: runs the benchmark in `bench/NAME.ts` (its `main`).
 *
 * @module
 */

const [name, ...args] = Deno.args;
const known = [...Deno.readDirSync(new URL(".", import.meta.url))]
  .filter((e) => e.isFile && e.name.endsWith(".ts") && e.name !== "run.ts")
  .map((e) => e.name.slice(0, -3))
  .sort();
if (!name || !known.includes(name)) {
  console.error(`usage: deno task bench <${known.join("|")}> [args]`);
  Deno.exit(name ? 2 : 0);
}
const mod = await import(`./${name}.ts`);
await mod.main(args);
