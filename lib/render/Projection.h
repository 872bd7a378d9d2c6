#pragma once
// Weak perspective projection (paper section 3.1, DESIGN.md "Image formation").
//
// M is an unconstrained [B, 2, 4] matrix: the image point of a model-space
// vertex X is (x, y) = M [X; 1], directly in facebatch image coordinates (x
// right, y down, pixels, origin at the centre of the top-left pixel). A
// "clean" M is built from a scale s, a rotation R (model -> view frame) and a
// translation t (pixels):
//     M = [ s R[0,:]   t_x ]
//         [ -s R[1,:]  t_y ]      (the minus sign: view y is up, image y is down)
// The view frame is x right, y up, z towards the viewer (model space of a
// frontal face, see Topology.h). SH lighting (Lighting.h) is defined in it.
//
// Depth from the cross product of M's normalised rows: with m0 = M[0,:3]/|M[0,:3]|
// and m1 = M[1,:3]/|M[1,:3]|, d = s (m0 x m1) . X where s = (|M[0,:3]| + |M[1,:3]|)/2.
// For a clean M, m0 x m1 = -R[2,:], so d grows AWAY from the camera (x right,
// y down, z forward: a right-handed camera frame) in pixel units; the z-buffer
// keeps the smallest d.
#include <ATen/Tensor.h>

namespace facebatch::render {

struct WeakPerspective {
  at::Tensor scale;        ///< [B]
  at::Tensor rotation;     ///< [B, 3, 3] model -> view frame (orthonormal, det +1)
  at::Tensor translation;  ///< [B, 2] pixels
};

/// M [B, 2, 4] from scale [B], rotation [B, 3, 3], translation [B, 2] (differentiable).
at::Tensor ComposeM(const at::Tensor& scale, const at::Tensor& rotation, const at::Tensor& translation);
/// Nearest clean decomposition of M: s = mean row norm, R from the normalised
/// rows (orthonormalised symmetrically, det +1), t = M[:, :, 3].
WeakPerspective DecomposeM(const at::Tensor& M);

/// Image points (x, y) = M [X; 1]: vertices [B, N, 3] -> [B, N, 2] (eq. 3's projection).
at::Tensor ProjectVertices(const at::Tensor& M, const at::Tensor& vertices);
/// Depth d = s (m0 x m1) . X (see above): [B, N], larger = farther.
at::Tensor VertexDepth(const at::Tensor& M, const at::Tensor& vertices);
/// Rotation used for normals: rows m0, -m1, normalise(m0 x -m1) (differentiable;
/// exactly R for a clean M). [B, 3, 3].
at::Tensor ViewRotation(const at::Tensor& M);

/// Rotation of 3DDFA / 300W-LP: R = Rx(pitch) Ry(yaw) Rz(roll) with
///   Rx = [1 0 0; 0 c s; 0 -s c], Ry = [c 0 -s; 0 1 0; s 0 c], Rz = [c s 0; -s c 0; 0 0 1]
/// (radians; the transposes of the usual right-handed matrices). Positive yaw
/// turns the nose towards image left. pitch/yaw/roll: [B] -> [B, 3, 3].
at::Tensor RotationFromPoseAngles(const at::Tensor& pitch, const at::Tensor& yaw, const at::Tensor& roll);
/// Inverse of RotationFromPoseAngles: [B, 3, 3] -> [B, 3] (pitch, yaw, roll),
/// yaw in [-pi/2, pi/2].
at::Tensor PoseAnglesFromRotation(const at::Tensor& rotation);

/// 300W-LP / AFLW2000-3D `Pose_Para` = [pitch, yaw, roll, tx, ty, tz, f] (one row
/// per image: [B, 7]) -> M [B, 2, 4] in facebatch image coordinates.
/// 3DDFA projects (MATLAB, 1-based pixels) p = f R X + t3d and flips
/// y_img = height + 1 - p_y; in our 0-based centre-of-pixel coordinates this is
///   x = f R[0,:] X + tx - 1,   y = height - (f R[1,:] X + ty).
/// (face3d's Python port uses x = p_x, y = height - 1 - p_y: one pixel off in
/// both; pass matlab_one_based = false for that.) tz is not used by weak
/// perspective. X is in the units of the model the Pose_Para was fitted with
/// (BFM); `model_scale` converts: M applies to X_ours with X_bfm = model_scale * X_ours.
at::Tensor PoseParaToM(const at::Tensor& pose_para, double image_height, double model_scale = 1.0,
                       bool matlab_one_based = true);
/// Inverse (tz = 0): M [B, 2, 4] -> Pose_Para [B, 7].
at::Tensor MToPosePara(const at::Tensor& M, double image_height, double model_scale = 1.0,
                       bool matlab_one_based = true);

}  // namespace facebatch::render
