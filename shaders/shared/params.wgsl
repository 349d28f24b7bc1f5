// A kernel family's parameters: `Params` (an alias the family declares) in binding 0, copied
// once per invocation into private memory by `load_params()` at the top of every entry point.
// The compiler cannot know that the read-write bindings leave the buffer alone, so reading
// the buffer directly reloads each field after every store.

@group(0) @binding(BINDING_PARAMS) var<storage, read> params_buffer: Params;
var<private> params: Params;

fn load_params() {
    params = params_buffer;
}
