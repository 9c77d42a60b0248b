"""MegEngine's official model zoo architectures for the speed benchmark (``make_bench_models.py --zoo``).

Re-implemented after the public code (MegEngine/Models ``official/``; YOLOX's ``demo/MegEngine/python``) at the
originals' widths, at input sizes that keep one forward of ours under ~0.3 s at 1 thread. Each model is built the
way its original builds its graph (the same modules, reshapes, dynamic shape arithmetic and in-place writes), since
that decides the MegBrain operators the dumped file holds:

- ``resnext50``: ResNeXt-50 32x4d (classification/resnet: Bottleneck with groups=32, width_per_group=4), 224x224;
- ``fcos_gn``: FCOS with the ResNet-18 backbone and FPN of the detector fixtures (P3-P6, 128 channels) and the
  original's PointHead (4 x (3x3 conv, GroupNorm(32), ReLU) per tower, shared over levels, learnable level scales),
  decoding to boxes and sqrt(score * centerness) per point (no NMS: the detect set benchmarks post-processing),
  320x320;
- ``deeplabv3plus``: DeepLabV3+ on ResNet-50 with res5 dilated (output stride 16), the dilated ASPP (rates 6, 12,
  18, image pooling branch), the decoder on res2, 21 classes, 224x224;
- ``simplebaseline``: SimpleBaseline-ResNet50 pose (3 ConvTranspose2d 4x4 stride 2 + BatchNorm + ReLU, 17 keypoint
  heatmaps), 256x192;
- ``bert``: BERT (nlp/bert: BertLayerNorm as mean/variance arithmetic, tanh GELU, attention through reshape/
  transpose with the shape computed from ``x.shape`` at run time, extended attention mask), 2 layers, hidden 128,
  2 heads, intermediate 512, sequence 48; inputs input_ids, token_type_ids, attention_mask (int32);
- ``dcgan``: the DCGAN CIFAR generator of gan/megengine_mimicry (Linear, 3 GBlocks with BatchNorm before ReLU and
  bilinear 2x upsampling, 256 channels, sigmoid output), noise (N, 128) -> (N, 3, 32, 32);
- ``yolox_nano``: YOLOX-nano (depth 0.33, width 0.25, depthwise, SiLU, Focus, SPP, CSP PAFPN with bilinear
  upsampling, decoupled head, decode_outputs with its in-place writes), 416x416.
"""

from __future__ import annotations

import math

import numpy as np

from fixtures.real_megengine import F, M, mge

# -- ResNet family (classification/resnet/model.py) ----------------------------------------------------------------


class Bottleneck(M.Module):
    expansion = 4

    def __init__(self, cin, channels, stride=1, groups=1, base_width=64, dilation=1):
        super().__init__()
        width = int(channels * (base_width / 64.0)) * groups
        self.conv1, self.bn1 = M.Conv2d(cin, width, 1, 1, bias=False), M.BatchNorm2d(width)
        self.conv2 = M.Conv2d(width, width, 3, stride, padding=dilation, groups=groups, dilation=dilation, bias=False)
        self.bn2 = M.BatchNorm2d(width)
        self.conv3 = M.Conv2d(width, channels * 4, 1, 1, bias=False)
        self.bn3 = M.BatchNorm2d(channels * 4)
        self.downsample = (M.Identity() if cin == channels * 4 and stride == 1 else
                           M.Sequential(M.Conv2d(cin, channels * 4, 1, stride, bias=False),
                                        M.BatchNorm2d(channels * 4)))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.downsample(x))


class ResNet(M.Module):
    """ResNet-50 layout (3, 4, 6, 3 bottlenecks); ``groups``/``width_per_group`` make ResNeXt, ``dilate_res5``
    replaces res5's stride by dilation (DeepLabV3+'s replace_stride_with_dilation=[False, False, True])."""

    def __init__(self, groups=1, width_per_group=64, dilate_res5=False, num_classes=1000):
        super().__init__()
        self.cin, self.dilation, self.groups, self.base_width = 64, 1, groups, width_per_group
        self.conv1, self.bn1 = M.Conv2d(3, 64, 7, 2, 3, bias=False), M.BatchNorm2d(64)
        self.maxpool = M.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, 2)
        self.layer3 = self._make_layer(256, 6, 2)
        self.layer4 = self._make_layer(512, 3, 2, dilate=dilate_res5)
        self.fc = M.Linear(2048, num_classes) if num_classes else None

    def _make_layer(self, channels, blocks, stride=1, dilate=False):
        previous = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        layers = [Bottleneck(self.cin, channels, stride, self.groups, self.base_width, previous)]
        self.cin = channels * 4
        layers += [Bottleneck(self.cin, channels, 1, self.groups, self.base_width, self.dilation)
                   for _ in range(1, blocks)]
        return M.Sequential(*layers)

    def extract_features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        res2 = self.layer1(x)
        res5 = self.layer4(self.layer3(self.layer2(res2)))
        return {"res2": res2, "res5": res5}

    def forward(self, x):
        x = F.avg_pool2d(self.extract_features(x)["res5"], 7)
        return self.fc(F.flatten(x, 1))


# -- DeepLabV3+ (segmentation/models/deeplabv3plus.py) --------------------------------------------------------------


def conv_bn_relu(cin, cout, k, padding=0, dilation=1):
    return M.Sequential(M.Conv2d(cin, cout, k, 1, padding=padding, dilation=dilation, bias=False),
                        M.BatchNorm2d(cout), M.ReLU())


class ASPP(M.Module):
    def __init__(self, cin, cout, dr=1):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 1, dilation=dr)
        self.conv2 = conv_bn_relu(cin, cout, 3, 6 * dr, 6 * dr)
        self.conv3 = conv_bn_relu(cin, cout, 3, 12 * dr, 12 * dr)
        self.conv4 = conv_bn_relu(cin, cout, 3, 18 * dr, 18 * dr)
        self.conv_gp = conv_bn_relu(cin, cout, 1)
        self.conv_out = conv_bn_relu(cout * 5, cout, 1)

    def forward(self, x):
        gp = F.nn.interpolate(self.conv_gp(F.mean(x, [2, 3], True)), x.shape[2:])
        out = F.concat([self.conv1(x), self.conv2(x), self.conv3(x), self.conv4(x), gp], axis=1)
        return self.conv_out(out)


class DeepLabV3Plus(M.Module):
    def __init__(self, num_classes=21):
        super().__init__()
        self.backbone = ResNet(dilate_res5=True, num_classes=0)
        self.aspp = ASPP(2048, 256)
        self.dropout = M.Dropout(0.5)
        self.upstage1 = conv_bn_relu(256, 48, 1)
        self.upstage2 = M.Sequential(conv_bn_relu(256 + 48, 256, 3, 1), M.Dropout(0.5),
                                     conv_bn_relu(256, 256, 3, 1), M.Dropout(0.1))
        self.conv_out = M.Conv2d(256, num_classes, 1, 1, padding=0)

    def forward(self, x):
        layers = self.backbone.extract_features(x)
        up0 = F.nn.interpolate(self.dropout(self.aspp(layers["res5"])), layers["res2"].shape[2:])
        up2 = self.upstage2(F.concat([up0, self.upstage1(layers["res2"])], 1))
        return F.nn.interpolate(self.conv_out(up2), x.shape[2:])


# -- SimpleBaseline (keypoints/models/simplebaseline.py) ------------------------------------------------------------


class SimpleBaseline(M.Module):
    def __init__(self, keypoints=17):
        super().__init__()
        self.backbone = ResNet(num_classes=0)
        body, cin = [], 2048
        for _ in range(3):
            body += [M.ConvTranspose2d(cin, 256, 4, 2, 1, bias=False), M.BatchNorm2d(256), M.ReLU()]
            cin = 256
        self.deconv_layers = M.Sequential(*body)
        self.last_layer = M.Conv2d(256, keypoints, 3, 1, 1)

    def forward(self, x):
        return self.last_layer(self.deconv_layers(self.backbone.extract_features(x)["res5"]))


# -- FCOS with GroupNorm heads (detection/models/fcos.py, layers/det/point_head.py) ---------------------------------


class FCOSGN(M.Module):
    STRIDES = (8, 16, 32, 64)

    def __init__(self, det, sizes, num_classes=80):
        super().__init__()
        c = sizes.channels
        self.det = det
        self.backbone, self.fpn = det.Backbone(sizes.widths), det.FPN(sizes.widths, c)
        cls, box = [], []
        for _ in range(4):
            cls += [M.Conv2d(c, c, 3, 1, 1), M.GroupNorm(32, c), M.ReLU()]
            box += [M.Conv2d(c, c, 3, 1, 1), M.GroupNorm(32, c), M.ReLU()]
        self.cls_subnet, self.bbox_subnet = M.Sequential(*cls), M.Sequential(*box)
        self.cls_score = M.Conv2d(c, num_classes, 3, 1, 1)
        self.bbox_pred = M.Conv2d(c, 4, 3, 1, 1)
        self.ctrness = M.Conv2d(c, 1, 3, 1, 1)
        self.scale_list = mge.Parameter(np.ones(len(self.STRIDES), dtype="float32"))
        self.num_classes = num_classes

    def forward(self, image):
        feats = self.fpn(self.backbone(self.det.preprocess(image)))[1:]
        n = image.shape[0]
        logits, offsets, ctrness, points = [], [], [], []
        for i, (feat, stride) in enumerate(zip(feats, self.STRIDES)):
            cls, box = self.cls_subnet(feat), self.bbox_subnet(feat)
            logits.append(self.cls_score(cls).transpose(0, 2, 3, 1).reshape(n, -1, self.num_classes))
            offset = F.relu(self.bbox_pred(box) * self.scale_list[i]) * stride
            offsets.append(offset.transpose(0, 2, 3, 1).reshape(n, -1, 4))
            ctrness.append(self.ctrness(box).transpose(0, 2, 3, 1).reshape(n, -1, 1))
            h, w = feat.shape[2:]
            xs = F.arange(stride / 2, w * stride + stride / 2, step=stride)
            ys = F.arange(stride / 2, h * stride + stride / 2, step=stride)
            points.append(F.stack([F.broadcast_to(xs, (h, w)).reshape(-1),
                                   F.broadcast_to(ys.reshape(-1, 1), (h, w)).reshape(-1)], axis=1))
        points, deltas = F.expand_dims(F.concat(points), 0), F.concat(offsets, axis=1)
        boxes = F.concat([points - deltas[..., :2], points + deltas[..., 2:]], axis=2)  # PointCoder.decode
        scores = F.sqrt(F.sigmoid(F.concat(logits, axis=1)) * F.sigmoid(F.concat(ctrness, axis=1)))
        return boxes, scores


# -- BERT (nlp/bert/model.py) ---------------------------------------------------------------------------------------


def gelu(x):
    return x * 0.5 * (1.0 + F.tanh(F.sqrt(2 / math.pi) * (x + 0.044715 * (x ** 3))))


class BertLayerNorm(M.Module):
    def __init__(self, hidden, eps=1e-12):
        super().__init__()
        self.weight = mge.Parameter(np.ones(hidden, np.float32))
        self.bias = mge.Parameter(np.zeros(hidden, np.float32))
        self.eps = eps

    def forward(self, x):
        u = F.mean(x, len(x.shape) - 1, True)
        s = F.mean((x - u) ** 2, len(x.shape) - 1, True)
        return self.weight * ((x - u) / ((s + self.eps) ** 0.5)) + self.bias


class BertLayer(M.Module):
    def __init__(self, hidden, heads, intermediate):
        super().__init__()
        self.heads, self.head_size = heads, hidden // heads
        self.query, self.key, self.value = (M.Linear(hidden, hidden) for _ in range(3))
        self.attn_dense, self.attn_norm = M.Linear(hidden, hidden), BertLayerNorm(hidden)
        self.inter = M.Linear(hidden, intermediate)
        self.out_dense, self.out_norm = M.Linear(intermediate, hidden), BertLayerNorm(hidden)

    def split_heads(self, x):
        """BertSelfAttention.transpose_for_scores, the shape computed at run time from ``x.shape``: per dimension,
        not through one concatenated shape tensor, whose ndim symbolic tracing cannot know (matmul asserts it)."""
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_size).transpose(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split_heads(self.query(x)), self.split_heads(self.key(x)), self.split_heads(self.value(x))
        scores = F.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(self.head_size) + mask
        probs = M.Softmax(len(scores.shape) - 1)(scores)
        context = F.matmul(probs, v).transpose(0, 2, 1, 3)
        context = context.reshape(context.shape[0], context.shape[1], self.heads * self.head_size)
        attn = self.attn_norm(self.attn_dense(context) + x)
        return self.out_norm(self.out_dense(gelu(self.inter(attn))) + attn)


class Bert(M.Module):
    def __init__(self, vocab=30522, hidden=128, layers=2, heads=2, intermediate=512, max_positions=512):
        super().__init__()
        self.word_embeddings = M.Embedding(vocab, hidden)
        self.position_embeddings = M.Embedding(max_positions, hidden)
        self.token_type_embeddings = M.Embedding(2, hidden)
        self.embed_norm = BertLayerNorm(hidden)
        self.layers = [BertLayer(hidden, heads, intermediate) for _ in range(layers)]
        self.pooler = M.Linear(hidden, hidden)

    def forward(self, input_ids, token_type_ids, attention_mask):
        mask = (1.0 - F.expand_dims(attention_mask, (1, 2)).astype("float32")) * -10000.0
        seq = input_ids.shape[1]
        positions = F.linspace(0, seq - 1, seq).astype(np.int32)
        positions = F.broadcast_to(F.expand_dims(positions, 0), input_ids.shape)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) \
            + self.token_type_embeddings(token_type_ids)
        x = self.embed_norm(x)
        for layer in self.layers:
            x = layer(x, mask)
        return x, F.tanh(self.pooler(x[:, 0]))


# -- DCGAN generator (gan/megengine_mimicry/nets/dcgan/dcgan_cifar.py, nets/blocks.py) -----------------------------


class GBlock(M.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c1, self.c2 = M.Conv2d(cin, cout, 3, 1, padding=1), M.Conv2d(cout, cout, 3, 1, padding=1)
        self.b1, self.b2 = M.BatchNorm2d(cin), M.BatchNorm2d(cout)
        self.c_sc = M.Conv2d(cin, cout, 1, 1, padding=0)

    @staticmethod
    def up(x):
        return F.nn.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        h = self.c2(F.relu(self.b2(self.c1(self.up(F.relu(self.b1(x)))))))
        return h + self.c_sc(self.up(x))


class DCGANGenerator(M.Module):
    def __init__(self, nz=128, ngf=256, bottom_width=4):
        super().__init__()
        self.bottom_width = bottom_width
        self.l1 = M.Linear(nz, bottom_width ** 2 * ngf)
        self.block2, self.block3, self.block4 = GBlock(ngf, ngf), GBlock(ngf, ngf), GBlock(ngf, ngf)
        self.b5, self.c5 = M.BatchNorm2d(ngf), M.Conv2d(ngf, 3, 3, 1, padding=1)

    def forward(self, x):
        h = self.l1(x).reshape(x.shape[0], -1, self.bottom_width, self.bottom_width)
        h = self.block4(self.block3(self.block2(h)))
        return F.sigmoid(self.c5(F.relu(self.b5(h))))


# -- YOLOX (Megvii-BaseDetection/YOLOX demo/MegEngine/python/models) -------------------------------------------------


class BaseConv(M.Module):
    def __init__(self, cin, cout, ksize, stride, groups=1):
        super().__init__()
        self.conv = M.Conv2d(cin, cout, ksize, stride, (ksize - 1) // 2, groups=groups, bias=False)
        self.bn = M.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x * F.sigmoid(x)  # the demo's export-friendly SiLU


class DWConv(M.Module):
    def __init__(self, cin, cout, ksize, stride=1):
        super().__init__()
        self.dconv, self.pconv = BaseConv(cin, cin, ksize, stride, groups=cin), BaseConv(cin, cout, 1, 1)

    def forward(self, x):
        return self.pconv(self.dconv(x))


class YBottleneck(M.Module):
    def __init__(self, cin, cout, shortcut=True):
        super().__init__()
        self.conv1, self.conv2 = BaseConv(cin, cout, 1, 1), DWConv(cout, cout, 3, 1)
        self.use_add = shortcut and cin == cout

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(M.Module):
    def __init__(self, cin, cout, n=1, shortcut=True):
        super().__init__()
        hidden = int(cout * 0.5)
        self.conv1, self.conv2 = BaseConv(cin, hidden, 1, 1), BaseConv(cin, hidden, 1, 1)
        self.conv3 = BaseConv(2 * hidden, cout, 1, 1)
        self.m = M.Sequential(*[YBottleneck(hidden, hidden, shortcut) for _ in range(n)])

    def forward(self, x):
        return self.conv3(F.concat((self.m(self.conv1(x)), self.conv2(x)), axis=1))


class SPPBottleneck(M.Module):
    def __init__(self, cin, cout, kernel_sizes=(5, 9, 13)):
        super().__init__()
        hidden = cin // 2
        self.conv1 = BaseConv(cin, hidden, 1, 1)
        self.m = [M.MaxPool2d(ks, 1, ks // 2) for ks in kernel_sizes]
        self.conv2 = BaseConv(hidden * (len(kernel_sizes) + 1), cout, 1, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(F.concat([x] + [m(x) for m in self.m], axis=1))


class Focus(M.Module):
    def __init__(self, cin, cout, ksize=1):
        super().__init__()
        self.conv = BaseConv(cin * 4, cout, ksize, 1)

    def forward(self, x):
        return self.conv(F.concat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]),
                                  axis=1))


class YOLOXNano(M.Module):
    """CSPDarknet + YOLOPAFPN + YOLOXHead at depth 0.33, width 0.25, depthwise (build.py's "yolox-nano")."""

    def __init__(self, num_classes=80, depth=0.33, width=0.25):
        super().__init__()
        base, d = int(width * 64), max(round(depth * 3), 1)
        c3, c4, c5 = (int(c * width) for c in (256, 512, 1024))
        n = round(3 * depth)
        self.stem = Focus(3, base, 3)
        self.dark2 = M.Sequential(DWConv(base, base * 2, 3, 2), CSPLayer(base * 2, base * 2, d))
        self.dark3 = M.Sequential(DWConv(base * 2, base * 4, 3, 2), CSPLayer(base * 4, base * 4, d * 3))
        self.dark4 = M.Sequential(DWConv(base * 4, base * 8, 3, 2), CSPLayer(base * 8, base * 8, d * 3))
        self.dark5 = M.Sequential(DWConv(base * 8, base * 16, 3, 2), SPPBottleneck(base * 16, base * 16),
                                  CSPLayer(base * 16, base * 16, d, shortcut=False))
        self.lateral_conv0, self.C3_p4 = BaseConv(c5, c4, 1, 1), CSPLayer(2 * c4, c4, n, False)
        self.reduce_conv1, self.C3_p3 = BaseConv(c4, c3, 1, 1), CSPLayer(2 * c3, c3, n, False)
        self.bu_conv2, self.C3_n3 = DWConv(c3, c3, 3, 2), CSPLayer(2 * c3, c4, n, False)
        self.bu_conv1, self.C3_n4 = DWConv(c4, c4, 3, 2), CSPLayer(2 * c4, c5, n, False)
        head = int(256 * width)
        self.stems = [BaseConv(c, head, 1, 1) for c in (c3, c4, c5)]
        self.cls_convs = [M.Sequential(DWConv(head, head, 3), DWConv(head, head, 3)) for _ in range(3)]
        self.reg_convs = [M.Sequential(DWConv(head, head, 3), DWConv(head, head, 3)) for _ in range(3)]
        self.cls_preds = [M.Conv2d(head, num_classes, 1) for _ in range(3)]
        self.reg_preds = [M.Conv2d(head, 4, 1) for _ in range(3)]
        self.obj_preds = [M.Conv2d(head, 1, 1) for _ in range(3)]
        self.strides = (8, 16, 32)

    @staticmethod
    def upsample(x):
        return F.vision.interpolate(x, scale_factor=2, mode="bilinear")

    def forward(self, x):
        x2 = self.dark3(self.dark2(self.stem(x)))
        x1 = self.dark4(x2)
        x0 = self.dark5(x1)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(F.concat([self.upsample(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(F.concat([self.upsample(fpn_out1), x2], 1))
        pan_out1 = self.C3_n3(F.concat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(F.concat([self.bu_conv1(pan_out1), fpn_out0], 1))
        outputs = []
        for k, feat in enumerate((pan_out2, pan_out1, pan_out0)):
            feat = self.stems[k](feat)
            reg_feat = self.reg_convs[k](feat)
            outputs.append(F.concat([self.reg_preds[k](reg_feat), F.sigmoid(self.obj_preds[k](reg_feat)),
                                     F.sigmoid(self.cls_preds[k](self.cls_convs[k](feat)))], 1))
        hw = [o.shape[-2:] for o in outputs]
        outputs = F.transpose(F.concat([F.flatten(o, start_axis=2) for o in outputs], axis=2), (0, 2, 1))
        grids, strides = [], []  # YOLOXHead.decode_outputs
        for (hsize, wsize), stride in zip(hw, self.strides):
            xv = F.broadcast_to(F.arange(hsize), (wsize, hsize))
            yv = F.broadcast_to(F.arange(wsize).reshape(-1, 1), (wsize, hsize))
            grid = F.stack((xv, yv), 2).reshape(1, -1, 2)
            grids.append(grid)
            strides.append(F.full((*grid.shape[:2], 1), stride))
        grids, strides = F.concat(grids, axis=1), F.concat(strides, axis=1)
        outputs[..., :2] = (outputs[..., :2] + grids) * strides
        outputs[..., 2:4] = F.exp(outputs[..., 2:4]) * strides
        return outputs
