// The manual page as users read it: `man -l man/smtpdcheck.1` (man-db and groff; .ci/run
// installs man-db), shared by test/man.test.ts and test/recipes.test.ts.
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

const run = promisify(execFile)
export const PAGE = new URL('../man/smtpdcheck.1', import.meta.url).pathname

/**
 * The page as `man -l` shows it (man-db and groff, what a user runs; .ci/run installs man-db),
 * at 80 columns and without a pager: what it printed on stdout and on stderr.
 */
export async function manL(page = PAGE): Promise<{stdout: string; stderr: string}> {
  const env = {...process.env, MANWIDTH: '80', COLUMNS: '80', MANPAGER: 'cat', PAGER: 'cat', MAN_KEEP_FORMATTING: undefined, GROFF_NO_SGR: '1', LANG: 'C.UTF-8'}
  try {
    const {stdout, stderr} = await run('man', ['-l', page], {encoding: 'utf8', env})
    return {stdout: stdout.replace(/.\x08/g, ''), stderr}
  } catch (error) {
    const e = error as NodeJS.ErrnoException & {stdout?: string; stderr?: string}
    if (e.code === 'ENOENT') throw new Error('man is not installed: apt-get install -y man-db (.ci/run does this)')
    return {stdout: e.stdout ?? '', stderr: e.stderr ?? String(error)}
  }
}


/**
 * Where the lines of `text` stand in the page as shown, indented alike (a literal display):
 * true when some run of consecutive lines is `text`, line for line, after one indentation.
 */
export function showsBlock(shown: string, text: string): boolean {
  const lines = shown.split('\n')
  const want = text.replace(/\n+$/, '').split('\n')
  return lines.some((line, i) => {
    if (!line.endsWith(want[0]) || line.length === want[0].length) return false
    const indent = line.slice(0, line.length - want[0].length)
    return /^ +$/.test(indent) && want.every((w, k) => lines[i + k] === (w === '' ? '' : indent + w))
  })
}
