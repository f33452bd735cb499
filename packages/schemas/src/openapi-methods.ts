/**
 * The methods the document lists for the route `path` matches (with HEAD wherever GET is, as the
 * server answers it), or undefined when no documented route matches. Both services answer a
 * documented path requested with another method with 405 `method_not_allowed` and this list in
 * `Allow`: one rule for the session-manager and the sample worker.
 *
 * @example
 * allowedMethods(document, '/sessions.start') // ['POST']
 */
export function allowedMethods(document: Record<string, unknown>, path: string): string[] | undefined {
  const paths = document.paths as Record<string, Record<string, unknown>>
  for (const [template, operations] of Object.entries(paths)) {
    const pattern = new RegExp(
      `^${template
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]+')}$`,
    )
    if (!pattern.test(path)) continue
    const methods = Object.keys(operations).map((m) => m.toUpperCase())
    return methods.includes('GET') ? [...methods, 'HEAD'] : methods
  }
  return undefined
}
