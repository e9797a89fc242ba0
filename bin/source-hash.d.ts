/** Types of bin/source-hash.js (plain JavaScript: it runs before anything is compiled). */
export declare const SOURCE_DIRS: string[];
export declare const SHARED_FILES: string[];
export declare function sourceHash(root: string): string;
