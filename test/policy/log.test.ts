// The log's value quoting (SPEC §11: values quoted, `"` and `\` escaped): any text, once
// written, reads back as itself by the JSON rules, and never carries a raw control
// character, space or quote outside quotes. Journald detection by device and inode.
import {closeSync, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {kv, MAX_VALUE_CHARS, quoteValue, stderrIsJournal} from '../../src/policy/log.js'
import {postlogWriter} from '../../src/policy/stdio.js'

/** How a reader takes a value back: a JSON string if quoted, else the text itself. */
const readBack = (written: string) => (written.startsWith('"') ? (JSON.parse(written) as string) : written)

describe('log values', () => {
  it('any text reads back as itself; a bare value is a plain token, a quoted one has no raw control character', () => {
    fc.assert(
      fc.property(fc.string({unit: 'binary', maxLength: MAX_VALUE_CHARS}), (text) => {
        const written = quoteValue(text)
        expect(readBack(written)).toBe(text)
        if (!written.startsWith('"')) expect(written).toMatch(/^[!#-<>-[\]-~]+$/)
        expect(written).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/)
      }),
      {numRuns: 2000},
    )
  })

  it('the empty value, quotes, backslashes and = are quoted', () => {
    expect(quoteValue('')).toBe('""')
    expect(quoteValue('a"b\\c')).toBe('"a\\"b\\\\c"')
    expect(quoteValue('a=b')).toBe('"a=b"')
    expect(quoteValue('line\nbreak')).toBe('"line\\nbreak"')
    expect(quoteValue('\x1b[31m')).toBe('"\\u001b[31m"')
  })

  it('a long value is cut', () => {
    expect(readBack(quoteValue('x'.repeat(1000)))).toBe(`${'x'.repeat(MAX_VALUE_CHARS)}…`)
  })

  it('kv: fields in order, undefined left out, booleans yes/no', () => {
    expect(kv({event: 'decision', domain: 'example.org', server: undefined, cached: false, ms: 12, note: 'a b'})).toBe('event=decision domain=example.org cached=no ms=12 note="a b"')
  })
})

describe('stderrIsJournal', () => {
  it('true only when JOURNAL_STREAM names the very file on the descriptor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-log-'))
    const fd = openSync(join(dir, 'f'), 'w')
    try {
      const {dev, ino} = fstatSync(fd)
      expect(stderrIsJournal({JOURNAL_STREAM: `${dev}:${ino}`}, fd)).toBe(true)
      expect(stderrIsJournal({JOURNAL_STREAM: `${dev}:${ino + 1}`}, fd)).toBe(false)
      expect(stderrIsJournal({JOURNAL_STREAM: 'junk'}, fd)).toBe(false)
      expect(stderrIsJournal({}, fd)).toBe(false)
    } finally {
      closeSync(fd)
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('postlogWriter (serve --stdio under spawn(8))', () => {
  it('hands the lines, without the smtpdcheck: tag, to postlog -t smtpdcheck on its standard input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-postlog-'))
    try {
      const fake = join(dir, 'postlog')
      writeFileSync(fake, `#!/bin/sh\necho "$@" > ${dir}/args\ncat >> ${dir}/lines\n`, {mode: 0o755})
      expect(postlogWriter([join(dir, 'missing'), '/nonexistent/postlog'])).toBeUndefined()
      const write = postlogWriter([join(dir, 'missing'), fake])!
      write('smtpdcheck: level=info event=start listen=stdio\nsmtpdcheck: level=warning event=cache msg="a b"\n')
      write('smtpdcheck: level=info event=decision request=1 domain=example.org decision=dunno note=x\n')
      const lines = join(dir, 'lines')
      for (let i = 0; i < 100 && !(existsSync(lines) && readFileSync(lines, 'utf8').split('\n').length > 3); i++) await new Promise((r) => setTimeout(r, 20))
      expect(readFileSync(join(dir, 'args'), 'utf8')).toBe('-t smtpdcheck -p info\n')
      expect(readFileSync(lines, 'utf8')).toBe('level=info event=start listen=stdio\nlevel=warning event=cache msg="a b"\nlevel=info event=decision request=1 domain=example.org decision=dunno note=x\n')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
