// Per test file setup. Kept small: helpers live in test/support/*.ts and are imported explicitly.
export {};
