// Top-k's lists (key_list) of the perturbed logits an invocation has seen.
#import top_k_common
#import key_list

fn insert(list: ptr<function, List>, l: Lane) {
    if l.kind == LANE_INVALID {
        (*list).bad = true;
    }
    if l.kind == LANE_VALUE {
        insert_key(list, rank_key(l), l.k, params.k);
    }
}

fn insert_block(list: ptr<function, List>, b: Block) {
    insert(list, b.a);
    insert(list, b.b);
    insert(list, b.c);
    insert(list, b.d);
}
