// Issue 19, items 4 and 8: one text per recipe. Each recipe lives in contrib/ (what
// `--print-recipe` prints, shipped in the package); the README and the man page carry copies,
// and this test holds them equal: every code block of the README's recipe sections is shown,
// line for line, in the man page as `man -l` renders it, and each contrib/ recipe is one of
// them. The recipes themselves run in test/install-prefixes.test.ts and test/interop/.
import {realpathSync} from 'node:fs'
import {beforeAll, describe, expect, it} from 'vitest'

import {contrib, readmeBlocks} from '../fixtures/recipes.js'
import {RECIPES} from '../src/cli/recipe.js'
import {BIN, runCli} from './cli.js'
import {manL, showsBlock} from './man-page.js'

/** The README sections that show commands and recipes an administrator copies. */
const SECTIONS = ['A cache directory for the mail server', 'Use with Mail Avenger', 'Use with Exim', 'Use with Postfix']
/** The recipes of contrib/ the README shows (the others are in the man page and --print-recipe). */
const IN_README = ['avenger-secondary', 'exim.conf', 'postfix-main.cf']

let shown = ''
beforeAll(async () => {
  shown = (await manL()).stdout
})

describe('README, man page and contrib/ carry the same recipes', () => {
  const blocks = SECTIONS.flatMap((section) => readmeBlocks(section).map((block: string) => [section, block] as const))

  it('the README shows a code block in each recipe section', () => {
    for (const section of SECTIONS) expect(readmeBlocks(section).length, section).toBeGreaterThan(0)
  })

  it.each(blocks)('README "%s": the man page shows this block line for line', (_, block) => {
    expect(showsBlock(shown, block), block).toBe(true)
  })

  it.each(IN_README)('contrib/%s is a block of the README, word for word', (file) => {
    expect(blocks.map(([, block]) => block)).toContain(contrib(file))
  })

  it.each(Object.values(RECIPES).map((r) => r.file).filter((file) => file.endsWith('.conf') || file.endsWith('.cf') || file === 'avenger-secondary'))('contrib/%s is shown in the man page', (file) => {
    expect(showsBlock(shown, contrib(file))).toBe(true)
  })

  it('the check can fail: a changed line is not found', () => {
    expect(showsBlock(shown, contrib('exim.conf').replace('{1}', '{0}'))).toBe(false)
  })

  it('the man page no longer has the recipe without the crash guard (issue 19 item 4)', () => {
    expect(shown.replace(/\s+/g, ' ')).not.toMatch(/condition = \$\{if =\{\$runrc\}\{1\}\}(?! ?\})/)
  })
})

describe('--print-recipe NAME (in the checkout; installed: test/install-prefixes.test.ts)', () => {
  const script = realpathSync(BIN)
  /** What each recipe names as the command on PATH, and what this installation's command is. */
  const command = `${process.execPath} ${script}`
  const expected: Record<string, (file: string) => string> = {
    exim: (file) => file.replace('/usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin \\\n    smtpdcheck ', `${process.execPath} \\\n    ${script} `),
    'exim-serve': (file) => file,
    postfix: (file) => file,
    avenger: (file) => file.replace('`smtpdcheck ', `\`${command} `),
    systemd: (file) => file.replace('\nExecStart=smtpdcheck serve ', `\nExecStart=${command} serve `),
  }
  it.each(Object.keys(RECIPES))('%s: the contrib/ text, its command node + bin/run.js by absolute path', async (name) => {
    const r = await runCli(['--print-recipe', name])
    expect(r).toMatchObject({status: 0, stderr: ''})
    const file = contrib(RECIPES[name as keyof typeof RECIPES].file)
    expect(r.stdout).toBe(expected[name](file))
    if (!['exim-serve', 'postfix'].includes(name)) expect(r.stdout).not.toBe(file)
  })

  it('an unknown recipe, or anything beside it: exit 2, one line naming the recipes', async () => {
    expect(await runCli(['--print-recipe', 'sendmail'])).toEqual(expect.objectContaining({stdout: '', status: 2, stderr: 'smtpdcheck: --print-recipe: unknown recipe "sendmail" (exim, exim-serve, postfix, avenger, systemd)\n'}))
    expect(await runCli(['--print-recipe', 'exim', 'mx1.example.org'])).toEqual(expect.objectContaining({stdout: '', status: 2, stderr: 'smtpdcheck: --print-recipe takes nothing else: "mx1.example.org"\n'}))
  })
})
