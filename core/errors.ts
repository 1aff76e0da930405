/**
 * Errors a user can act on. The CLI prints their message on one line and exits with
 * code 2; the server turns them into a 400 response. Anything else is a bug.
 *
 * @module
 */

/** A bad input: unknown name, value out of range, missing file, corrupt data. */
export class UsageError extends Error {
  /** The flag, field or file the error is about, when there is one. */
  readonly param?: string;
  /** `message` says what is wrong and what is allowed. */
  constructor(message: string, param?: string) {
    super(message);
    this.name = "UsageError";
    this.param = param;
  }
}

/** A plugin broke a rule (invalid plan, threw, too slow); names the plugin. */
export class PluginError extends Error {
  /** Slot of the plugin. */
  readonly slot: string;
  /** Name of the plugin. */
  readonly plugin: string;
  /** Describes the broken rule. */
  constructor(slot: string, plugin: string, message: string, options?: ErrorOptions) {
    super(`${slot} plugin "${plugin}": ${message}`, options);
    this.name = "PluginError";
    this.slot = slot;
    this.plugin = plugin;
  }
}
