/**
 * A Hugging Face tokenizer (`tokenizer.json`, through npm `@huggingface/tokenizers`) with
 * the model's chat template (rendered by npm `@huggingface/jinja`).
 *
 * @module
 */

import { Tokenizer as HfTokenizerImpl } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { UsageError } from "../errors.ts";
import type { ChatMessage, Tokenizer } from "./types.ts";
import { plainChatTemplate } from "./chat_template.ts";

/** What `tokenizer_config.json` may say (the fields used here). */
export interface TokenizerConfigJson {
  /** A Jinja template, or named templates (the "default" one is used). */
  chat_template?: string | { name: string; template: string }[];
  /** Special tokens, as strings or `{ content }` objects. */
  bos_token?: string | { content: string } | null;
  /** End-of-sequence token. */
  eos_token?: string | { content: string } | null;
  /** Padding token. */
  pad_token?: string | { content: string } | null;
  /** Unknown token. */
  unk_token?: string | { content: string } | null;
  /** Whether decoding removes spaces before punctuation. */
  clean_up_tokenization_spaces?: boolean;
  /** Anything else. */
  [key: string]: unknown;
}

function tokenText(t: string | { content: string } | null | undefined): string | undefined {
  if (t === null || t === undefined) return undefined;
  return typeof t === "string" ? t : t.content;
}

/** Pick the template text out of `chat_template` (a string or a list of named ones). */
function templateText(raw: TokenizerConfigJson["chat_template"]): string | undefined {
  if (typeof raw === "string") return raw;
  if (Array.isArray(raw)) return (raw.find((t) => t.name === "default") ?? raw[0])?.template;
  return undefined;
}

/** A `tokenizer.json` tokenizer. */
export class HfTokenizer implements Tokenizer {
  /** One more than the largest id (added tokens included). */
  readonly vocabSize: number;
  /** The `<s>`-like token id prepended by `encode(…, { addBos: true })`, or -1. */
  readonly bosTokenId: number;
  readonly #tok: HfTokenizerImpl;
  readonly #template: Template | undefined;
  readonly #specials: Record<string, string>;

  /**
   * `tokenizerJson` is the parsed `tokenizer.json`; `config` the parsed
   * `tokenizer_config.json` (or `{}`); `chatTemplate` overrides its `chat_template`.
   * `ids` gives the model's BOS/EOS ids, used when the config names no such tokens.
   */
  constructor(
    tokenizerJson: unknown,
    config: TokenizerConfigJson = {},
    chatTemplate?: string,
    ids: { bos?: number; eos?: number } = {},
  ) {
    const cfg = {
      ...config,
      clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false,
    };
    try {
      this.#tok = new HfTokenizerImpl(tokenizerJson as object, cfg);
    } catch (e) {
      throw new UsageError(`tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
    let max = -1;
    for (const id of this.#tok.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;

    const bos = tokenText(config.bos_token) ??
      (ids.bos !== undefined && ids.bos >= 0 ? this.#tok.id_to_token(ids.bos) : undefined);
    const eos = tokenText(config.eos_token) ??
      (ids.eos !== undefined && ids.eos >= 0 ? this.#tok.id_to_token(ids.eos) : undefined);
    this.bosTokenId = bos !== undefined ? (this.#tok.token_to_id(bos) ?? ids.bos ?? -1) : -1;
    this.#specials = {};
    if (bos !== undefined) this.#specials.bos_token = bos;
    if (eos !== undefined) this.#specials.eos_token = eos;
    const pad = tokenText(config.pad_token);
    if (pad !== undefined) this.#specials.pad_token = pad;
    const unk = tokenText(config.unk_token);
    if (unk !== undefined) this.#specials.unk_token = unk;

    const source = chatTemplate ?? templateText(config.chat_template);
    if (source !== undefined) {
      try {
        this.#template = new Template(source);
      } catch (e) {
        throw new UsageError(`chat template could not be parsed: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Token ids of `text` (no special tokens added, except BOS when `addBos`). BOS is not
   * doubled when the text already starts with it (chat templates often write it).
   */
  encode(text: string, options?: { addBos?: boolean }): number[] {
    const ids = this.#tok.encode(text, { add_special_tokens: false }).ids;
    const addBos = options?.addBos && this.bosTokenId >= 0 && ids[0] !== this.bosTokenId;
    return addBos ? [this.bosTokenId, ...ids] : ids;
  }

  /** Text of `ids`; special tokens and ids outside the vocabulary are skipped. */
  decode(ids: readonly number[]): string {
    const known = ids.filter((id) => id >= 0 && id < this.vocabSize);
    if (known.length === 0) return "";
    return this.#tok.decode(known, { skip_special_tokens: true });
  }

  /**
   * Render `messages` with the model's chat template (`bos_token`, `eos_token` and
   * `add_generation_prompt` available to it), or the plain template when it has none.
   */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string {
    const addGenerationPrompt = options?.addGenerationPrompt ?? true;
    if (!this.#template) return plainChatTemplate(messages, { addGenerationPrompt });
    try {
      return this.#template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
        ...this.#specials,
      });
    } catch (e) {
      throw new UsageError(`chat template failed: ${(e as Error).message}`);
    }
  }
}
