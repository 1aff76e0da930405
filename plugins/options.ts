/**
 * Plugin options from their zod schema: validation with messages that name the flag,
 * the expected type and the allowed range; string values from the command line coerced
 * by the schema's types; help text.
 *
 * @module
 */

import { z } from "zod";
import { UsageError } from "../core/errors.ts";
import type { OptionsSchema, Plugin } from "./define.ts";

/** `tokenBudget` -> `token-budget`. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** `token-budget` -> `tokenBudget`. */
export function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

type JsonSchema = {
  type?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
  description?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
};

/** JSON-schema description of a plugin's options (input side: defaults are optional). */
export function optionsJsonSchema(schema: OptionsSchema): Record<string, JsonSchema> {
  const js = z.toJSONSchema(schema as unknown as z.ZodType, {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  return js.properties ?? {};
}

/** "an integer from 1 to 4096", "one of fcfs, priority", ... for an option's schema. */
export function describeAllowed(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(describeAllowed).join(" or ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  const big = 1e15;
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  const range = [
    lo !== undefined && Math.abs(lo) < big
      ? `${s.exclusiveMinimum !== undefined ? ">" : ">="} ${lo}`
      : "",
    hi !== undefined && Math.abs(hi) < big
      ? `${s.exclusiveMaximum !== undefined ? "<" : "<="} ${hi}`
      : "",
  ].filter(Boolean).join(" and ");
  const kind = s.type === "integer"
    ? "an integer"
    : s.type === "number"
    ? "a number"
    : s.type === "boolean"
    ? "true or false"
    : s.type === "string"
    ? "a string"
    : s.type === "array"
    ? `a list${s.items ? ` of ${describeAllowed(s.items)}` : ""}`
    : s.type ?? "any value";
  return range ? `${kind} ${range}` : kind;
}

/** Coerce a command-line string toward what an option's schema accepts. */
export function coerceFlagValue(raw: string, s: JsonSchema | undefined): unknown {
  if (!s) return raw;
  const kinds = s.anyOf ?? [s];
  for (const k of kinds) {
    if (k.const !== undefined && String(k.const) === raw) return k.const;
  }
  for (const k of kinds) {
    if ((k.type === "number" || k.type === "integer") && raw.trim() !== "" && !isNaN(Number(raw))) {
      return Number(raw);
    }
    if (k.type === "boolean" && (raw === "true" || raw === "false")) return raw === "true";
    if (k.type === "array") return raw.split(",").map((v) => coerceFlagValue(v, k.items));
  }
  return raw;
}

/**
 * Validate raw options for a plugin. Unknown keys are refused; a bad value gives a
 * UsageError naming `--<slot>.<option>`, what was given and what is allowed.
 */
export function parseOptions(plugin: Plugin, raw: Record<string, unknown> = {}): unknown {
  const props = optionsJsonSchema(plugin.options);
  const known = Object.keys(props);
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) {
      const allowed = known.length ? known.map(kebab).join(", ") : "none";
      throw new UsageError(
        `${plugin.slot} plugin "${plugin.name}" has no option "${kebab(key)}"; options: ${allowed}`,
        `--${plugin.slot}.${kebab(key)}`,
      );
    }
  }
  const result = plugin.options.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = String(issue.path[0] ?? "");
  const flag = `--${plugin.slot}.${kebab(key)}`;
  const given = key in raw ? JSON.stringify(raw[key]) : "nothing";
  const allowed = props[key] ? describeAllowed(props[key]) : issue.message;
  throw new UsageError(
    `bad value for ${flag} (${plugin.slot} plugin "${plugin.name}"): got ${given}, expected ${allowed}`,
    flag,
  );
}

/** Help lines for a plugin's options: flag, allowed values, default, description. */
export function optionsHelp(plugin: Plugin): string[] {
  const props = optionsJsonSchema(plugin.options);
  return Object.entries(props).map(([key, s]) => {
    const def = s.default !== undefined ? ` (default ${JSON.stringify(s.default)})` : "";
    const desc = s.description ? `  ${s.description}` : "";
    return `--${plugin.slot}.${kebab(key)} <${describeAllowed(s)}>${def}${desc}`;
  });
}
