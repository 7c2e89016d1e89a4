/**
 * Domain errors: plain classes, free of transport types. `src/api/errors.ts`
 * maps each to its Connect code in one place.
 */

/** Input that breaks a rule; `field` names the offending request field. */
export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A named thing does not exist (or is not visible to the caller). */
export class NotFoundError extends Error {
  override name = "NotFoundError";
  constructor(
    readonly kind: string,
    readonly id: string,
  ) {
    super(`${kind} ${id} not found`);
  }
}

/** A thing with the same identity exists already. */
export class AlreadyExistsError extends Error {
  override name = "AlreadyExistsError";
}

/** The request is valid but the current state does not allow it. */
export class FailedPreconditionError extends Error {
  override name = "FailedPreconditionError";
}

/** A size or rate limit was exceeded. */
export class LimitExceededError extends Error {
  override name = "LimitExceededError";
}

/** The caller's credentials are not valid, or no longer (an API key revoked during a stream). */
export class UnauthenticatedError extends Error {
  override name = "UnauthenticatedError";
}

/** The caller is known but may not do this (another tenant, a narrower scope). */
export class PermissionDeniedError extends Error {
  override name = "PermissionDeniedError";
}
