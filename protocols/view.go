package protocols

import "slices"

// View is one way of photographing the treated area. The set is fixed so that photos of the same
// view line up across a timeline and across patients.
type View struct {
	Name  string `json:"name"`
	Label Text   `json:"label"`
	Hint  Text   `json:"hint"` // how to take it, shown to the family next to the camera button
}

// Views returns the known views in display order. The slice is new on every call.
func Views() []View { return slices.Clone(views) }

// views is the fixed set, in display order; ViewOrder and LookupView read it without copying
// (the clinic's pages look views up on every request).
var views = []View{
	{
		Name:  "front",
		Label: Text{EN: "Front", ZH: "正面"},
		Hint: Text{
			EN: "Face the treated area straight on, about an arm's length away, so the whole area fills most of the picture.",
			ZH: "手机正对治疗部位，距离大约一臂远，让整个部位占满画面的大部分。",
		},
	},
	{
		Name:  "left-oblique",
		Label: Text{EN: "Left oblique", ZH: "左斜侧"},
		Hint: Text{
			EN: "Step round to the child's left until the camera faces the area at about 45°, halfway between the front and the side, and take the same area.",
			ZH: "走到孩子的左前方，让手机和正面成大约 45 度角（正面和侧面的中间），拍同一个部位。",
		},
	},
	{
		Name:  "right-oblique",
		Label: Text{EN: "Right oblique", ZH: "右斜侧"},
		Hint: Text{
			EN: "Step round to the child's right until the camera faces the area at about 45°, halfway between the front and the side, and take the same area.",
			ZH: "走到孩子的右前方，让手机和正面成大约 45 度角（正面和侧面的中间），拍同一个部位。",
		},
	},
	{
		Name:  "close-up",
		Label: Text{EN: "Close-up", ZH: "近距离特写"},
		Hint: Text{
			EN: "Come close (about 15 cm) to the part that worries you most or the area the clinic asked about. Tap the screen to focus.",
			ZH: "靠近到大约 15 厘米，拍您最担心的地方或医生特别交代的部位。拍之前点一下屏幕对焦。",
		},
	},
	{
		Name:  "left",
		Label: Text{EN: "Left side", ZH: "左侧面"},
		Hint: Text{
			EN: "Take the area from the child's left side, at a right angle to the front picture.",
			ZH: "从孩子的左侧拍，与正面照成直角。",
		},
	},
	{
		Name:  "right",
		Label: Text{EN: "Right side", ZH: "右侧面"},
		Hint: Text{
			EN: "Take the area from the child's right side, at a right angle to the front picture.",
			ZH: "从孩子的右侧拍，与正面照成直角。",
		},
	},
	{
		Name:  "back",
		Label: Text{EN: "Back", ZH: "背面"},
		Hint: Text{
			EN: "Take the area from behind, straight on.",
			ZH: "从背后正对着拍。",
		},
	},
}

// LookupView returns the view with the given name.
func LookupView(name string) (View, bool) {
	if i := ViewOrder(name); i >= 0 {
		return views[i], true
	}
	return View{}, false
}

// ViewOrder is the view's place in display order, or -1 for an unknown name.
func ViewOrder(name string) int {
	return slices.IndexFunc(views, func(v View) bool { return v.Name == name })
}

func viewNames() []string {
	vs := Views()
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return names
}
