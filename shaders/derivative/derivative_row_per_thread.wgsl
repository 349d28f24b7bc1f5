// VJP or JVP, one invocation per row: three passes over the row (the sample's statistics when
// recomputed, the dot product, the outputs), no barriers.
#import row_cache_private
#import derivative_row_per_thread_body
