/**
 * An error berth has classified (a registry's, a host's, a provider's, the inventory's): `type` names what went
 * wrong and becomes the Temporal failure's type; `retryable` says whether another attempt can help (the others
 * fail at once); `retryAfterMs` is when the other side asked to be tried again; `details` travel with the failure.
 */
export class ClassifiedError<T extends string = string> extends Error {
  constructor(
    readonly type: T,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = type;
  }

  get retryable(): boolean {
    return false;
  }

  get retryAfterMs(): number | undefined {
    return undefined;
  }

  get details(): unknown[] | undefined {
    return undefined;
  }
}
