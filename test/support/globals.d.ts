// Tests read JSON bodies loosely; production code never relies on this.
interface Response {
  json(): Promise<any>;
}
