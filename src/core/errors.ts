// The two ways a run ends with exit status 2 (SPEC §6).

/** A bad word, flag or value: nothing is probed. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** What an exit-2 failure was, for `--json`'s error object (SPEC §6). */
export type FailureKind = 'usage' | 'stop-lookup' | 'mx-lookup' | 'system'

/** A `--stop` or `--mx` lookup failure or a system error. */
export class FatalError extends Error {
  override name = 'FatalError'
  constructor(
    message: string,
    readonly kind: Exclude<FailureKind, 'usage'> = 'system',
  ) {
    super(message)
  }
}

/** Errors that say this host, not a server, failed: out of descriptors or buffers (SPEC §3). */
export const OUT_OF_RESOURCES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])

/** The words after a local error code in a system error line. */
export function outOfResources(code: string): string {
  return `${code}, this host is out of file descriptors or buffers`
}

/** Longest piece of user input echoed in an error line. */
export const MAX_ECHO = 200

/** User input in an error line: in double quotes, cut to MAX_ECHO characters with `…`. */
export function quote(text: string): string {
  return `"${text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}…` : text}"`
}

/** Control characters (C0, DEL, C1) and `\` escaped: the text stays one printable line. */
export function escapeControls(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\\]/g, (c) => {
    if (c === '\\') return '\\\\'
    if (c === '\r') return '\\r'
    if (c === '\n') return '\\n'
    if (c === '\t') return '\\t'
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
  })
}
