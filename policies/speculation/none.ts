/**
 * `none` speculation plugin: no drafts, every decode computes one token (the default).
 *
 * @module
 */

import { definePlugin, type Plugin } from "../../plugins/define.ts";
import type { Speculator } from "../../core/slots.ts";

/** The `none` plugin. */
export const noSpeculation: Plugin<"speculation"> = definePlugin({
  name: "none",
  slot: "speculation",
  description: "no speculative decoding",
  create: (): Speculator => ({}),
});
