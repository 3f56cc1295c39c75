package imagestore

import (
	"fmt"
	"strings"
)

// Reason says why an upload was refused. The set is deliberately small; the web layer maps it
// to a status code in one place:
//
//	ReasonTooLarge, ReasonTooManyPixels          413 Request Entity Too Large
//	ReasonUnsupported, ReasonHEIC, ReasonUnsupportedJPEG  415 Unsupported Media Type
//	ReasonMalformed, ReasonTooComplex, ReasonUnclean  422 Unprocessable Entity
type Reason string

const (
	// ReasonUnsupported: not JPEG, PNG or WebP (also animated WebP and JPEG extensions the
	// sanitizer cannot vouch for).
	ReasonUnsupported Reason = "unsupported"
	// ReasonUnsupportedJPEG: a JPEG in a coding the product cannot show (its decoder, like
	// most, reads 8-bit Huffman-coded baseline, extended and progressive JPEG only):
	// arithmetic-coded, lossless, hierarchical or JPEG-LS frames, or 12-bit samples. The
	// message says how to send an ordinary JPEG.
	ReasonUnsupportedJPEG Reason = "unsupported-jpeg"
	// ReasonHEIC: HEIC, HEIF or AVIF, the iPhone default; the message says how to send JPEG.
	ReasonHEIC Reason = "heic"
	// ReasonTooLarge: more bytes than Limits.MaxBytes.
	ReasonTooLarge Reason = "too-large"
	// ReasonTooManyPixels: declared dimensions beyond Limits.MaxSide or Limits.MaxPixels, or
	// more pixels per byte of file than Limits.MaxPixelsPerByte.
	ReasonTooManyPixels Reason = "too-many-pixels"
	// ReasonMalformed: truncated or structurally broken (bad lengths, bad CRC, no image data).
	ReasonMalformed Reason = "malformed"
	// ReasonTooComplex: more segments or chunks than Limits.MaxSegments.
	ReasonTooComplex Reason = "too-complex"
	// ReasonUnclean: the rewritten file failed independent verification; never stored.
	ReasonUnclean Reason = "unclean"
)

// RejectError is returned (wrapped or not; use errors.As) for every refused upload.
type RejectError struct {
	Reason Reason
	// Detail is for logs: it names structures and offsets, never metadata values.
	Detail string
	// Err is the underlying cause, if any.
	Err error
}

// Reasons lists every Reason, for callers that map a stored or sent code back to one.
func Reasons() []Reason {
	return []Reason{ReasonUnsupported, ReasonUnsupportedJPEG, ReasonHEIC, ReasonTooLarge, ReasonTooManyPixels,
		ReasonMalformed, ReasonTooComplex, ReasonUnclean}
}

func reject(reason Reason, detail string) *RejectError {
	return &RejectError{Reason: reason, Detail: detail}
}

func rejectf(reason Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func (e *RejectError) Error() string {
	msg := "imagestore: photo rejected (" + string(e.Reason) + ")"
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *RejectError) Unwrap() error { return e.Err }

// Message is the text shown to the parent, in lang ("en", or "zh-CN" and other "zh" tags).
func (e *RejectError) Message(lang string) string { return e.Reason.Message(lang) }

// Message is the text shown to the parent for this reason, in lang ("en" or "zh-CN"); any
// language other than Chinese gets English.
func (r Reason) Message(lang string) string {
	m := r.messages()
	if strings.HasPrefix(strings.ToLower(lang), "zh") {
		return m.zh
	}
	return m.en
}

type message struct{ en, zh string }

func (r Reason) messages() message {
	switch r {
	case ReasonHEIC:
		return message{
			en: "This photo is in HEIC/HEIF format (the iPhone default), which we cannot accept. " +
				"Please send it as JPEG: on iPhone open Settings > Camera > Formats, choose " +
				"Most Compatible and take the photo again, or share or export the photo as JPEG.",
			zh: "此照片为 HEIC/HEIF 格式（iPhone 默认格式），无法接收。请以 JPEG 格式发送：" +
				"在 iPhone 上打开“设置 > 相机 > 格式”，选择“兼容性最佳”后重新拍摄；" +
				"或将照片以 JPEG 格式共享或导出。",
		}
	case ReasonUnsupportedJPEG:
		return message{
			en: "This photo is a JPEG in a special encoding (arithmetic-coded, lossless, " +
				"hierarchical or 12-bit) that we cannot display. Please send the photo as the " +
				"phone camera saved it, or save it again as an ordinary JPEG.",
			zh: "此照片是采用特殊编码（算术编码、无损、分层或 12 位）的 JPEG，我们无法显示。" +
				"请发送手机相机保存的照片，或将其重新保存为普通 JPEG 后发送。",
		}
	case ReasonTooLarge:
		return message{
			en: "This file is too large. Please send the photo straight from the phone camera.",
			zh: "文件过大。请直接发送手机相机拍摄的照片。",
		}
	case ReasonTooManyPixels:
		return message{
			en: "This image is too large in size. Please send a normal photo from the phone " +
				"camera, not a panorama or a scan.",
			zh: "图片尺寸过大。请发送手机相机拍摄的普通照片，而不是全景图或扫描件。",
		}
	case ReasonMalformed:
		return message{
			en: "This photo file is damaged or incomplete. Please send it again.",
			zh: "照片文件已损坏或不完整。请重新发送。",
		}
	case ReasonTooComplex:
		return message{
			en: "This photo file has an unusual structure we cannot process. " +
				"Please send the photo straight from the phone camera.",
			zh: "照片文件结构异常，无法处理。请直接发送手机相机拍摄的照片。",
		}
	case ReasonUnclean:
		return message{
			en: "We could not safely remove hidden information (such as the location) from " +
				"this photo. Please send the photo straight from the phone camera, or save it " +
				"again as JPEG.",
			zh: "无法安全去除此照片中的隐藏信息（如拍摄位置）。请直接发送手机相机拍摄的照片，" +
				"或重新保存为 JPEG 后发送。",
		}
	}
	return message{
		en: "We cannot accept this kind of file. Please send a JPEG, PNG or WebP photo.",
		zh: "无法接收此类文件。请发送 JPEG、PNG 或 WebP 格式的照片。",
	}
}
