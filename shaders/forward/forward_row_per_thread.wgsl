// Forward pass, one invocation per row: no barriers, which suits short rows everywhere and
// medium rows on CPU drivers, where barriers are expensive.
#import row_cache_private
#import forward_row_per_thread_body
