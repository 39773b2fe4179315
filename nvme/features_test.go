package nvme

import "testing"

func TestSetFeaturesGolden(t *testing.T) {
	// Linux host: Set Features Number of Queues for 2 I/O queues.
	s := SetFeaturesCmd(FeatNumQueues, 0, NumQueuesValue(2, 2), false)
	s.CID = 4122
	checkSQE(t, "num queues", s,
		"09401a1000000000000000000000000000000000000000000000000000000000000000000000005a070000000100010000000000000000000000000000000000")
	// Async event configuration: namespace attribute and ANA change notices.
	s = SetAsyncEventConfigCmd(AECNamespaceAttr | AECANAChange)
	s.CID = 4123
	checkSQE(t, "AEC", s,
		"09401b1000000000000000000000000000000000000000000000000000000000000000000000005a0b0000000009000000000000000000000000000000000000")
	// Discovery controller: discovery log change notices.
	s = SetFeaturesCmd(FeatAsyncEventConfig, 0, AECDiscovery, false)
	s.CID = 15
	checkSQE(t, "AEC discovery", s,
		"09400f0000000000000000000000000000000000000000000000000000000000000000000000005a0b0000000000008000000000000000000000000000000000")
	// nvmet's answer: 128 queues each.
	var c CQE
	if err := c.Decode(mustHex(t, "7f007f00000000000c0000001a100000")); err != nil {
		t.Fatal(err)
	}
	if nsq, ncq := DecodeNumQueues(c.DW0); nsq != 128 || ncq != 128 || c.CID != 4122 {
		t.Errorf("nsq %d ncq %d", nsq, ncq)
	}
}

func TestFeatureFields(t *testing.T) {
	s := SetFeaturesCmd(FeatHostIdentifier, 7, 1, true)
	if FeatureID(&s) != FeatHostIdentifier || !FeatureSave(&s) || s.CDW10 != 0x80000081 || s.NSID != 7 || s.CDW11 != 1 {
		t.Errorf("%+v", s)
	}
	g := GetFeaturesCmd(FeatKeepAliveTimer, 0, SelSupportedCaps|0xF8)
	if g.Opcode != AdminGetFeatures || g.CDW10 != 0x30F || FeatureID(&g) != FeatKeepAliveTimer ||
		FeatureSelect(&g) != SelSupportedCaps || FeatureSave(&g) {
		t.Errorf("%+v", g)
	}
	k := SetKeepAliveTimerCmd(120000)
	if FeatureID(&k) != FeatKeepAliveTimer || k.CDW11 != 120000 {
		t.Errorf("%+v", k)
	}
	if v := NumQueuesValue(1, 65535); v != 0xFFFE0000 {
		t.Errorf("NumQueuesValue = %#x", v)
	}
	if v := NumQueuesValue(0, 0); v != 0xFFFFFFFF {
		t.Errorf("count 0 = %#x", v)
	}
	for _, c := range [][2]uint16{{1, 1}, {2, 8}, {65535, 3}, {0, 0}} {
		nsq, ncq := DecodeNumQueues(NumQueuesValue(c[0], c[1]))
		if nsq != c[0] || ncq != c[1] {
			t.Errorf("%v -> %d %d", c, nsq, ncq)
		}
	}
}
