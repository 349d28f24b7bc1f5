// The thread-per-row forward kernel with its lane cache in workgroup memory, in workgroups of 8:
// rows of up to 1,024 elements make their noise once. Chosen on CPU drivers.
#import row_cache_workgroup
#import forward_row_per_thread_body
