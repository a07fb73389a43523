/** Helpers shared by the fuzz properties. */

/**
 * Throws when `e` or anything in its `cause` chain is an internal failure (TypeError, RangeError
 * such as a stack overflow, ReferenceError): typed errors must not merely wrap programming errors.
 */
export function assertNoInternalCause(e: unknown, what: string): void {
  const seen = new Set<unknown>();
  for (let c: unknown = e; c instanceof Error && !seen.has(c); c = (c as { cause?: unknown }).cause) {
    seen.add(c);
    if (c instanceof TypeError || c instanceof RangeError || c instanceof ReferenceError) {
      throw new Error(`${what} wrapped an internal error: ${c.stack ?? c.message}`);
    }
  }
}
