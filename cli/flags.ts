/**
 * Command-line flags: a small declarative spec per command, parsing with clear errors
 * (the flag, what was given, what is allowed), and help text from the same spec.
 *
 * Flags are `--name value` or `--name=value`; booleans take no value (`--name=false`
 * works too). Flags of the form `--<slot>` and `--<slot>.<option>` are collected apart
 * for the plugin slots.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";

/** One flag. */
export interface FlagSpec {
  /** Value kind. `list` takes comma-separated values and may repeat. */
  type: "string" | "int" | "number" | "boolean" | "list";
  /** One line for help. */
  description: string;
  /** Value when absent. */
  default?: string | number | boolean | string[];
  /** Smallest allowed value (numbers). */
  min?: number;
  /** Largest allowed value (numbers). */
  max?: number;
  /** Allowed values (strings). */
  choices?: readonly string[];
  /** Must be given. */
  required?: boolean;
}

/** A command's flags by kebab-case name. */
export type FlagSpecs = Record<string, FlagSpec>;

/** Parsed command line. */
export interface ParsedFlags {
  /** Values of declared flags (defaults filled in), by kebab-case name. */
  values: Record<string, unknown>;
  /** Flags given explicitly. */
  given: Set<string>;
  /** `--<slot> NAME` and `--<slot>.<option> VALUE`, by slot. */
  slots: Map<string, { name?: string; options: Record<string, string> }>;
  /** Arguments that are not flags. */
  positionals: string[];
}

/**
 * Parse `argv` against `specs`. `slotNames` are the plugin slots (their flags are kept
 * raw for the registry to check); any other unknown flag is an error.
 */
export function parseFlags(
  argv: string[],
  specs: FlagSpecs,
  slotNames: readonly string[] = [],
): ParsedFlags {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  const slots: ParsedFlags["slots"] = new Map();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--") || arg === "--") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const dot = name.indexOf(".");
    const slot = dot >= 0 ? name.slice(0, dot) : name;
    const spec = specs[name];
    if (!spec && slotNames.includes(slot)) {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`--${name} needs a value`, `--${name}`);
      }
      const entry = slots.get(slot) ?? { options: {} };
      if (dot < 0) entry.name = value;
      else entry.options[name.slice(dot + 1)] = value;
      slots.set(slot, entry);
      continue;
    }
    if (!spec) {
      throw new UsageError(`unknown flag --${name}; run with --help to see the flags`, `--${name}`);
    }
    if (spec.type === "boolean") {
      if (value !== undefined && value !== "true" && value !== "false") {
        throw new UsageError(
          `--${name} is a switch: give it alone, or =true / =false`,
          `--${name}`,
        );
      }
      values[name] = value !== "false";
    } else {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) {
          throw new UsageError(`--${name} needs a value (${allowed(spec)})`, `--${name}`);
        }
      }
      const v = convert(name, value, spec);
      values[name] = spec.type === "list"
        ? [...(values[name] as string[] ?? []), ...(v as string[])]
        : v;
    }
    given.add(name);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] !== undefined) continue;
    if (spec.required) {
      throw new UsageError(`--${name} is required (${allowed(spec)})`, `--${name}`);
    }
    if (spec.default !== undefined) values[name] = spec.default;
  }
  return { values, given, slots, positionals };
}

function convert(name: string, raw: string, spec: FlagSpec): unknown {
  const bad = (): never => {
    throw new UsageError(
      `bad value for --${name}: got ${JSON.stringify(raw)}, expected ${allowed(spec)}`,
      `--${name}`,
    );
  };
  switch (spec.type) {
    case "string":
      if (spec.choices && !spec.choices.includes(raw)) bad();
      return raw;
    case "list":
      return raw.split(",").filter((s) => s.length > 0);
    case "int":
    case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) bad();
      if (spec.type === "int" && !Number.isInteger(n)) bad();
      if (spec.min !== undefined && n < spec.min) bad();
      if (spec.max !== undefined && n > spec.max) bad();
      return n;
    }
  }
  return raw;
}

/** "an integer from 1 to 4096", "one of a, b" ... */
export function allowed(spec: FlagSpec): string {
  if (spec.choices) return `one of ${spec.choices.join(", ")}`;
  const kind = {
    string: "text",
    int: "an integer",
    number: "a number",
    boolean: "a switch",
    list: "a comma-separated list",
  }[spec.type];
  if (spec.min !== undefined && spec.max !== undefined) {
    return `${kind} from ${spec.min} to ${spec.max}`;
  }
  if (spec.min !== undefined) return `${kind} >= ${spec.min}`;
  if (spec.max !== undefined) return `${kind} <= ${spec.max}`;
  return kind;
}

/** Help lines for a set of flags. */
export function flagsHelp(specs: FlagSpecs): string[] {
  return Object.entries(specs).map(([name, s]) => {
    const arg = s.type === "boolean" ? "" : ` <${allowed(s)}>`;
    const def = s.default !== undefined && s.type !== "boolean"
      ? ` (default ${JSON.stringify(s.default)})`
      : "";
    return `  --${name}${arg}${def}\n      ${s.description}`;
  });
}
