// Which directory the cache may live in (issue 14; man page, SECURITY). smtpdcheck often
// runs as root or as the MTA's user: a directory another user can change would let that
// user choose what the cache believes, or make a root run write where it points. The
// cache directory must be a real directory (not a symbolic link), owned by the user and
// writable by nobody else; every directory above it must be owned by root or the user,
// and writable by others only when sticky (as /tmp is: others cannot move what is ours).
// Every directory a lookup passes through is checked, the real path of each prefix (a link
// is judged by the directory that holds it and by where it points); the cache directory is
// then used by its real path, so a link above it that changes later does not move it. Residual race: between the check and
// the use, only root or the user can change these directories.
import {lstatSync, mkdirSync, realpathSync, type Stats} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'

/** The directory's real path, or why it is not used, or (not asked to create it) that it is missing. */
export type CacheDirectory = {real: string; why?: never; missing?: never} | {why: string; real?: never; missing?: never} | {missing: true; real?: never; why?: never}

const octal = (stat: Stats) => (stat.mode & 0o7777).toString(8)
/** A file system error as the cache tells it: its code (ENOSPC), else its message. */
export const errorText = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String((error as Error).message ?? error)

/** Why the cache directory itself (as lstat sees it) is not to be trusted by `uid`, if it is not. */
function distrustDirectory(path: string, stat: Stats, uid: number | undefined): string | undefined {
  if (stat.isSymbolicLink()) return `${path} is a symbolic link`
  if (!stat.isDirectory()) return `${path} is not a directory`
  if (uid !== undefined && stat.uid !== uid) return `${path} is owned by uid ${stat.uid}, not ${uid}`
  if (stat.mode & 0o022) return `${path} is writable by group or others (mode ${octal(stat)})`
  return undefined
}

/** Why a directory above the cache directory is not to be trusted: another user could replace what is below it. */
function distrustAncestor(path: string, stat: Stats, uid: number | undefined): string | undefined {
  if (uid !== undefined && stat.uid !== 0 && stat.uid !== uid) return `${path} is owned by uid ${stat.uid}, neither root nor ${uid}`
  if (stat.mode & 0o022 && !(stat.mode & 0o1000)) return `${path} is writable by group or others and not sticky (mode ${octal(stat)})`
  return undefined
}

/**
 * Every directory a lookup of `path` (an existing directory) passes through: the real path
 * of each of its prefixes and everything above each. A link in a directory others may
 * write is thereby judged by that directory, not only by where it points.
 */
function traversed(path: string): Set<string> {
  const dirs = new Set<string>()
  for (let prefix = path; ; prefix = dirname(prefix)) {
    for (let real = realpathSync(prefix); !dirs.has(real); real = dirname(real)) dirs.add(real)
    if (prefix === dirname(prefix)) return dirs
  }
}

/** The first directory a lookup of `path` passes through that is not to be trusted. */
function distrustAncestors(path: string, uid: number | undefined): string | undefined {
  for (const dir of traversed(path)) {
    const why = distrustAncestor(dir, lstatSync(dir), uid)
    if (why) return why
  }
  return undefined
}

/**
 * Make the missing components of `dir`, each 0700, once the deepest existing one and
 * everything above it is trusted (a link planted above is never followed to make one).
 */
function makeMissing(dir: string, uid: number | undefined): string | undefined {
  const missing: string[] = []
  let existing = dir
  for (;;) {
    try {
      lstatSync(existing)
      break
    } catch (error) {
      if (errorText(error) !== 'ENOENT' || existing === dirname(existing)) throw error
      missing.unshift(basename(existing))
      existing = dirname(existing)
    }
  }
  if (missing.length === 0) return undefined
  const why = distrustAncestors(existing, uid)
  if (why) return why
  let real = realpathSync(existing)
  for (const name of missing) {
    real = join(real, name)
    try {
      mkdirSync(real, {mode: 0o700})
    } catch (error) {
      if (errorText(error) !== 'EEXIST') throw error
    }
  }
  return undefined
}

/**
 * The cache directory `dir` (relative to the working directory if not absolute) if it may
 * be trusted by `uid`, by its real path; `create` makes its missing components (0700).
 * Never throws: a failure is a reason not to use it.
 */
export function cacheDirectory(dir: string, create: boolean, uid: number | undefined = process.getuid?.()): CacheDirectory {
  const path = resolve(dir)
  try {
    const made = create ? makeMissing(path, uid) : undefined
    if (made) return {why: made}
    const stat = lstatSync(path)
    const parent = realpathSync(dirname(path))
    const why = distrustDirectory(path, stat, uid) ?? distrustAncestors(dirname(path), uid)
    return why ? {why} : {real: join(parent, basename(path))}
  } catch (error) {
    const failure = errorText(error)
    return failure === 'ENOENT' && !create ? {missing: true} : {why: `cannot use ${path} (${failure})`}
  }
}
