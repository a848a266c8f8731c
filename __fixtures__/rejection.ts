/** The error `work` rejects with, which must be a `type` (the test fails otherwise). */
export async function rejectionOf<E extends Error>(
  work: Promise<unknown>,
  type: abstract new (...args: never[]) => E
): Promise<E> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e
  )
  if (err instanceof type) return err
  throw new Error(`expected a ${type.name}, got ${err === undefined ? 'success' : String(err)}`)
}
