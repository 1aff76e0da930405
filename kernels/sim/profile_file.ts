/**
 * Reading and writing a fitted linear profile (the `cpu` profile) as JSON.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { LinearProfile } from "./cost_model.ts";

const KEYS = ["base", "perToken", "perSeq", "perPair", "perDecodeContext"] as const;

/** Check a parsed profile; UsageError naming the bad field. */
export function checkLinearProfile(o: unknown, where: string): LinearProfile {
  if (typeof o !== "object" || o === null) throw new UsageError(`${where}: expected a JSON object`);
  const p = o as Record<string, unknown>;
  for (const k of KEYS) {
    if (typeof p[k] !== "number" || !Number.isFinite(p[k] as number) || (p[k] as number) < 0) {
      throw new UsageError(`${where}: "${k}" must be a number >= 0 (seconds)`);
    }
  }
  return {
    name: String(p.name ?? "cpu"),
    model: String(p.model ?? ""),
    base: p.base as number,
    perToken: p.perToken as number,
    perSeq: p.perSeq as number,
    perPair: p.perPair as number,
    perDecodeContext: p.perDecodeContext as number,
  };
}

/** Read a profile file; UsageError when missing or malformed. */
export async function readLinearProfile(path: string): Promise<LinearProfile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new UsageError(
      `no fitted profile at ${path}: run \`deno run -A main.ts profile --out ${path}\` first`,
      "gpu",
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError(`${path}: not valid JSON`);
  }
  return checkLinearProfile(data, path);
}

/** Write a profile as pretty JSON. */
export async function writeLinearProfile(path: string, p: LinearProfile): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(p, null, 2) + "\n");
}
