// Runs once per `vitest run`. Database/Redis preparation lives in test/support/db.ts (per worker).
export default function setup(): void {}
