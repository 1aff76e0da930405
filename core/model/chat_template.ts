/**
 * The plain chat template used when a model brings none (presets, folders without a
 * `chat_template`): each message is `<|role|>\ncontent\n`, and the generation prompt is
 * `<|assistant|>\n`.
 *
 * @module
 */

import type { ChatMessage } from "./types.ts";

/** Render `messages` with the plain template. */
export function plainChatTemplate(
  messages: ChatMessage[],
  options?: { addGenerationPrompt?: boolean },
): string {
  let text = "";
  for (const m of messages) text += `<|${m.role}|>\n${m.content}\n`;
  if (options?.addGenerationPrompt ?? true) text += "<|assistant|>\n";
  return text;
}
