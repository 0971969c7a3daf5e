// Greeting reader (SPEC §4), pure: bytes in, verdict out.
import {describe, expect, it} from 'vitest'

import {MAX_LINE_OCTETS, classifyGreeting, printable, scanFirstLine} from '../../src/core/greeting.js'

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'))

describe('scanFirstLine', () => {
  it.each([
    ['220 mx ESMTP\r\n', '220 mx ESMTP'],
    ['220 mx ESMTP\n', '220 mx ESMTP'],
    ['220\r\n', '220'],
    ['220-first\r\n220 second\r\n', '220-first'],
    ['\r\n', ''],
    ['\n', ''],
    ['220 a\rb\n', '220 a\rb'],
    ['220 a\r\r\n', '220 a\r'],
  ])('%j is the line %j', (received, line) => {
    expect(scanFirstLine(bytes(received))).toEqual({kind: 'line', line})
  })

  it.each(['', '2', '22', '220', '220\r', '421', '5', '554-', '220 no end yet', '220 ends in a lone CR\r'])('%j needs more', (received) => {
    expect(scanFirstLine(bytes(received))).toEqual({kind: 'more'})
  })

  it.each([
    ['\x16\x03\x03', 'a TLS record'],
    ['HTTP/1.1 400', 'an HTTP answer'],
    ['6', 'a first digit no reply has'],
    ['2x', 'a letter in the code'],
    ['2200', 'a fourth digit'],
    ['220\t', 'a tab after the code'],
    ['\0\0', 'NUL octets'],
  ])('%j (%s) cannot begin a reply: not-reply at once, without waiting for a line end', (received) => {
    expect(scanFirstLine(bytes(received))).toEqual({kind: 'not-reply', line: received})
  })

  const long = (n: number) => `220 ${'x'.repeat(n - 4)}`

  it('a line of 512 octets is accepted without its line ending, with CR LF or bare LF', () => {
    expect(long(512).length).toBe(MAX_LINE_OCTETS)
    expect(scanFirstLine(bytes(`${long(512)}\r\n`))).toEqual({kind: 'line', line: long(512)})
    expect(scanFirstLine(bytes(`${long(512)}\n`))).toEqual({kind: 'line', line: long(512)})
    expect(scanFirstLine(bytes(long(512)))).toEqual({kind: 'more'})
    expect(scanFirstLine(bytes(`${long(512)}\r`))).toEqual({kind: 'more'})
  })

  it('a line of 513 octets is too long, with or without its end, as soon as the 513th octet is in', () => {
    for (const received of [long(513), `${long(513)}\n`, `${long(513)}\r\n`, `${long(512)}\rx`]) {
      const scan = scanFirstLine(bytes(received))
      expect(scan.kind).toBe('too-long')
      expect(scan.kind === 'too-long' && scan.line.length).toBe(MAX_LINE_OCTETS)
    }
  })

  it('octets are read as latin1 (one character per octet)', () => {
    expect(scanFirstLine(new Uint8Array([0x32, 0x32, 0x30, 0x20, 0xff, 0x0a]))).toEqual({kind: 'line', line: '220 \u00ff'})
  })
})

describe('classifyGreeting', () => {
  it.each([
    ['220 mx.example ESMTP Postfix', true],
    ['220', true],
    ['220 ', true],
    ['220-mx.example greeting, part one', false],
    ['220-', false],
  ])('%j is available (final: %s)', (line, final) => {
    expect(classifyGreeting(line)).toEqual({kind: 'available', final, line})
  })

  it.each([
    ['421 mx.example Service not available', 421, 'mx.example Service not available'],
    ['554 No SMTP service here', 554, 'No SMTP service here'],
    ['554-multi', 554, 'multi'],
    ['250 hello?', 250, 'hello?'],
    ['521', 521, ''],
  ])('%j is rejected with code %i', (line, code, text) => {
    expect(classifyGreeting(line)).toEqual({kind: 'rejected', code, text, line})
  })

  it.each([
    '2200 four digits',
    '220x',
    '220\tmx',
    ' 220 leading space',
    'SSH-2.0-OpenSSH_9.6',
    'HTTP/1.1 400 Bad Request',
    '',
    '22',
    '120 wait',
    '620 no such class',
    '\u0000\u0001\u0002',
  ])('%j is not an SMTP reply', (line) => {
    expect(classifyGreeting(line)).toMatchObject({kind: 'not-smtp', line})
  })
})

describe('printable', () => {
  it('escapes control characters and backslashes', () => {
    expect(printable('220 a\tb\r\n\u0000\u001b[31m\u007f\\')).toBe('220 a\\tb\\r\\n\\x00\\x1b[31m\\x7f\\\\')
  })

  it('cuts to 512 characters before escaping', () => {
    expect(printable('x'.repeat(600))).toBe('x'.repeat(512))
    expect(printable(`${'x'.repeat(511)}\u0000\u0000`)).toBe(`${'x'.repeat(511)}\\x00`)
  })

  it('leaves printable latin1 alone', () => {
    expect(printable('220 caf\u00e9 \u00ff')).toBe('220 caf\u00e9 \u00ff')
  })
})
