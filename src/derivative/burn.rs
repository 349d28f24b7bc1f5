//! The derivative family on burn tensors: the VJP op on burn's buffers, and the autodiff step
//! that calls it for the sample's backward pass.

use ::burn::backend::Autodiff;
use ::burn::backend::autodiff::NodeId;
use ::burn::backend::autodiff::checkpoint::base::Checkpointer;
use ::burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use ::burn::backend::autodiff::grads::Gradients;
use ::burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use ::burn::backend::tensor::FloatTensor;
use ::burn::tensor::DType;
use ::burn_cubecl::kernel::into_contiguous;
use ::burn_cubecl::tensor::CubeTensor;

use super::{Source, TauGradient, VjpCall};
use crate::burn::extension::{
    GumbelGradOps, GumbelOps, SampleSpec, bind, context_for, empty_like, kernel_shape,
    kernel_storage, submit,
};
use crate::{NoisePosition, Tau};

/// The VJP op: the gradients of the logits and of the per-row temperatures, the sample
/// recomputed from the logits and the same noise.
pub(crate) fn vjp(
    logits: CubeTensor,
    tau: CubeTensor,
    dy: CubeTensor,
    spec: SampleSpec,
) -> (CubeTensor, CubeTensor) {
    let (logits, tau) = (into_contiguous(logits), into_contiguous(tau));
    let mut dy = into_contiguous(dy);
    if dy.dtype != logits.dtype {
        dy = burn_cubecl::kernel::cast(dy, logits.dtype);
    }
    let context = context_for(&logits);
    let dl = empty_like(&logits, logits.meta.shape().clone(), logits.dtype);
    let dtau = empty_like(&tau, tau.meta.shape().clone(), DType::F32);
    let bound = [&logits, &tau, &dy, &dl, &dtau].map(bind);
    let call = VjpCall::new(
        spec.mode,
        kernel_storage(&logits),
        kernel_shape(&logits, spec.dim),
        Source::recompute_with(
            bound[0].slice(),
            NoisePosition::new(spec.seed, spec.offset).with_range(spec.range),
        ),
        bound[2].slice(),
        bound[3].slice(),
    )
    .with_tau(Tau::PerRow(bound[1].slice()))
    .with_dtau(TauGradient::PerRow(bound[4].slice()));
    submit(&context, "the VJP", |e| {
        context.kernels().record_vjp(e, &call)
    });
    (dl, dtau)
}

/// The sample on the autodiff backend: tracked, with the VJP as its backward step.
pub(crate) fn tracked_sample<B: GumbelOps + GumbelGradOps, C: CheckpointStrategy>(
    logits: FloatTensor<Autodiff<B, C>>,
    tau: FloatTensor<Autodiff<B, C>>,
    spec: SampleSpec,
) -> FloatTensor<Autodiff<B, C>> {
    /// The backward step: the VJP, from the logits and temperatures kept as they were.
    #[derive(Debug)]
    struct SampleBackward;

    impl<B: GumbelGradOps> Backward<B, 2> for SampleBackward {
        type State = (NodeId, NodeId, SampleSpec);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [logits_node, tau_node] = ops.parents;
            let dy = grads.consume::<B>(&ops.node);
            let (logits, tau, spec) = ops.state;
            let logits: FloatTensor<B> = checkpointer.retrieve_node_output(logits);
            let tau: FloatTensor<B> = checkpointer.retrieve_node_output(tau);
            let (dl, dtau) = B::gumbel_sample_vjp(logits, tau, dy, spec);
            if let Some(node) = logits_node {
                grads.register::<B>(node.id, dl);
            }
            if let Some(node) = tau_node {
                grads.register::<B>(node.id, dtau);
            }
        }
    }

    match SampleBackward
        .prepare::<C>([logits.node(), tau.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&logits), prep.checkpoint(&tau), spec);
            let out = B::gumbel_sample(logits.into_primitive(), tau.into_primitive(), spec);
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::gumbel_sample(
            logits.into_primitive(),
            tau.into_primitive(),
            spec,
        )),
    }
}
