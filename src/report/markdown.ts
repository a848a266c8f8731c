/** Text made safe for GitHub Markdown (job summaries and PR comments). */

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' }

/**
 * Makes text safe in a Markdown table cell, link text or list item: HTML-significant characters
 * become entities, Markdown punctuation (including `|` and `\`, which would split or un-escape a
 * cell) is backslash-escaped, and line breaks become `<br>`.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[&<>]/g, (c) => HTML_ENTITIES[c])
    .replace(/[\\`|*_[\]~$]/g, '\\$&')
    .replace(/\r\n|\r|\n/g, '<br>')
}

/**
 * A code span holding `text` literally: inside one, GitHub renders no markdown, @mentions,
 * #references, emoji or autolinks, and `<` stays text. The fence is longer than any backtick run
 * in the text; control characters (file names may hold a newline) are shown as their symbols.
 */
export function inlineCode(text: string): string {
  const visible = text.replace(/\p{Cc}/gu, (c) => {
    const n = c.charCodeAt(0)
    return n < 0x20 ? String.fromCharCode(0x2400 + n) : n === 0x7f ? '\u2421' : '\ufffd'
  })
  const longestRun = Math.max(0, ...(visible.match(/`+/g) ?? []).map((run) => run.length))
  const fence = '`'.repeat(longestRun + 1)
  // CommonMark strips one space from each side when both have one: pad so nothing is lost.
  const pad = /^[` ]|[` ]$/.test(visible) ? ' ' : ''
  return `${fence}${pad}${visible}${pad}${fence}`
}
