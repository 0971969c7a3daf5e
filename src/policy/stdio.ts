// `serve --stdio` (SPEC §11): the policy protocol on standard input and output, for one
// connection, as Postfix's spawn(8) runs a policy server (and as one may try it by hand).
import {spawn} from 'node:child_process'
import {existsSync, fstatSync} from 'node:fs'
import type net from 'node:net'
import {Duplex} from 'node:stream'

/**
 * Standard input and output as one duplex stream, in the shape the server's connections
 * use: reads pause while the server waits (backpressure), writes go to stdout in order,
 * `close` comes once input has ended and every reply is written.
 */
export function stdioStream(): net.Socket {
  const input = process.stdin
  const output = process.stdout
  let written = 0
  const stream = new Duplex({
    allowHalfOpen: true,
    read() {
      input.resume()
    },
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.length
      output.write(chunk, callback)
    },
    final(callback) {
      callback()
    },
  })
  input.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) input.pause()
  })
  input.on('end', () => stream.push(null))
  input.on('error', (error) => stream.destroy(error))
  output.on('error', (error) => stream.destroy(error))
  Object.defineProperty(stream, 'bytesWritten', {get: () => written})
  return stream as unknown as net.Socket
}

/** Is descriptor `fd` the same open file as one of `others` (spawn(8) connects stderr to the client too)? */
export function sameFile(fd: number, others: readonly number[]): boolean {
  try {
    const stat = fstatSync(fd, {bigint: true})
    return others.some((other) => {
      const o = fstatSync(other, {bigint: true})
      return o.dev === stat.dev && o.ino === stat.ino
    })
  } catch {
    return false
  }
}

/** Where Postfix installs postlog(1) (spawn(8) passes no PATH). */
const POSTLOG = ['/usr/sbin/postlog', '/usr/local/sbin/postlog', '/usr/bin/postlog']

/**
 * Log lines for Postfix's own log when stderr cannot take them (under spawn(8)): one
 * postlog(1) child, `-t smtpdcheck`, reading the lines on its standard input (it finds
 * Postfix's configuration through MAIL_CONFIG, which spawn exports). Undefined when there is
 * no postlog. The child ends when this process does (its input closes).
 */
export function postlogWriter(candidates: readonly string[] = POSTLOG): ((text: string) => void) | undefined {
  const path = candidates.find((p) => existsSync(p))
  if (path === undefined) return undefined
  let child: ReturnType<typeof spawn> | undefined
  let broken = false
  return (text) => {
    if (broken) return
    if (child === undefined) {
      child = spawn(path, ['-t', 'smtpdcheck', '-p', 'info'], {stdio: ['pipe', 'ignore', 'ignore']})
      child.on('error', () => (broken = true))
      child.stdin!.on('error', () => (broken = true))
      child.unref()
      ;(child.stdin as unknown as {unref?: () => void}).unref?.()
    }
    child.stdin!.write(text.replace(/^smtpdcheck: /gm, ''))
  }
}
