import path from 'node:path'
import { InputError } from './errors.js'

/**
 * Path and key rules shared by the inputs, file discovery and the alias: under everything that
 * uses them, so none of those imports another for them.
 */

/** Whether `child` is `parent` or inside it (both absolute, resolved). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
}

export function toPosix(p: string): string {
  return p.split(path.sep).join('/')
}

/** `<prefix>/<relative path>`; keys always use `/`, also on Windows runners. */
export function objectKey(versionPrefix: string, relativePath: string): string {
  return `${versionPrefix}/${relativePath}`
}

/**
 * Throws InputError when the alias and the version prefix overlap (one is the other or inside
 * it): moving the alias would then delete objects of the version.
 */
export function checkAliasName(alias: string, versionPrefix: string): void {
  const nested = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`)
  if (nested(alias, versionPrefix) || nested(versionPrefix, alias)) {
    throw new InputError(
      `\`alias\` "${alias}" and \`version-prefix\` "${versionPrefix}" overlap: ` +
        'moving the alias would delete objects of the version.',
      'Choose an alias that is neither the version prefix nor inside it (e.g. `latest`), nor contains it.'
    )
  }
}
