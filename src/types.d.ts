/** Native addons imported as file assets (`with { type: "file" }`) resolve to a path. */
declare module "*.addon" {
  const path: string;
  export default path;
}
