// XCTest tests of the guanxi Swift bindings generated from the library under test.
import Foundation
import XCTest

@testable import Guanxi

let password = "correct horse battery"

/// The handle's user, elevated by their password (set first when they have none).
func proven(_ crm: Crm, _ user: String) throws -> Crm {
    if try !crm.access().credentials(user: user).password {
        try crm.access().setPassword(user: user, password: password)
    }
    return try crm.access().elevate(proof: .password(password: password))
}

final class Idp: ElevationVerifier, @unchecked Sendable {
    func verify(user: String, token: String) -> Bool { token == "idp-ok:\(user)" }
}

/// The name of a ticket entry's kind of change.
func kindOf(_ change: TicketChange) -> String {
    switch change {
    case .created: return "created"
    case .reply: return "reply"
    case .status: return "status"
    case .assigned: return "assigned"
    case .rated: return "rated"
    }
}

final class Collector: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var received: [Event] = []

    func onEvent(event: Event) {
        lock.lock()
        received.append(event)
        lock.unlock()
    }

    var events: [Event] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    var seen: [String] { events.map { $0.name } }
}

final class Progress: ImportProgressListener, @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [[UInt64]] = []

    func onProgress(done: UInt64, total: UInt64) {
        lock.lock()
        calls.append([done, total])
        lock.unlock()
    }

    var seen: [[UInt64]] {
        lock.lock()
        defer { lock.unlock() }
        return calls
    }
}

final class CrmTests: XCTestCase {
    func huawei(_ crm: Crm) throws -> Customer {
        try crm.customers().create(input: NewCustomer(
            name: " 华为技术有限公司 ",
            province: "广东",
            city: "深圳市",
            tags: ["VIP"],
            contacts: [NewContact(name: "张伟", phones: ["+86 138-1234-5678"])]
        ))
    }

    func testGroupedHandlesPageEveryListWithACursor() throws {
        let crm = try Crm.inMemory(user: "alice")
        let made = try ["甲", "乙", "丙"].map {
            try crm.customers().create(input: NewCustomer(name: $0, industry: .manufacturing, size: .large))
        }
        let first = try crm.customers().list(filter: CustomerFilter(size: .large), page: PageRequest(limit: 2))
        XCTAssertEqual(first.items.map { $0.id }, made.prefix(2).map { $0.id })
        XCTAssertNotNil(first.next)
        let rest = try crm.customers().list(filter: CustomerFilter(industry: .manufacturing), page: PageRequest(after: first.next, limit: 2))
        XCTAssertEqual(rest.items.map { $0.id }, [made[2].id])
        XCTAssertNil(rest.next)
        XCTAssertThrowsError(try crm.customers().list(filter: CustomerFilter(), page: PageRequest(after: "x", limit: 0))) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }.sorted(), ["after", "limit"])
        }
        let deal = try crm.sales().opportunities().create(input: NewOpportunity(name: "ERP", customerId: made[0].id))
        XCTAssertEqual(try crm.sales().opportunities().list(stage: nil, open: true, owner: nil, page: PageRequest()).items.map { $0.id }, [deal.id])
        _ = try crm.sales().leads().create(input: NewLead(name: "王芳", phone: "13900001111"))
        XCTAssertEqual(try crm.sales().leads().list(owner: nil, open: true, page: PageRequest()).items.count, 1)
        XCTAssertEqual(try crm.sales().leads().count(owner: nil, open: true), 1)
        let t = try crm.service().tickets().create(input: NewTicket(subject: "无法登录", kind: .fault, priority: .high, customerId: made[1].id))
        let page = try crm.service().tickets().list(filter: TicketFilter(customerId: made[1].id, channel: .web), page: PageRequest(limit: 10))
        XCTAssertEqual(page.items.map { $0.id }, [t.id])
    }

    func testCreateGetUpdateList() throws {
        let crm = try Crm.inMemory(user: "alice")
        let c = try huawei(crm)
        XCTAssertEqual(c.name, "华为技术有限公司")
        XCTAssertTrue(c.code.hasPrefix("C"))
        XCTAssertEqual(c.region?.province, "广东省")
        XCTAssertEqual(c.status, .potential)
        XCTAssertEqual(try crm.customers().get(id: c.id), c)
        XCTAssertEqual(try crm.customers().getByCode(code: c.code), c)
        let updated = try crm.customers().update(id: c.id, version: c.version, patch: CustomerPatch(status: .customer))
        XCTAssertEqual(updated.version, 2)
        XCTAssertEqual(updated.status, .customer)
        _ = try crm.customers().create(input: NewCustomer(name: "腾讯", province: "广东"))
        XCTAssertEqual(try crm.customers().listAll(filter: CustomerFilter(tags: ["VIP"])).map { $0.code }, [c.code])
        XCTAssertEqual(try crm.customers().count(filter: CustomerFilter(province: "广东")), 2)
        XCTAssertEqual(try crm.contacts().list(customer: c.id).first?.phones, ["+8613812345678"])
    }

    func testValidationErrorNamesTheField() throws {
        let crm = try Crm.inMemory(user: "alice")
        XCTAssertThrowsError(try crm.customers().create(input: NewCustomer(
            name: "", contacts: [NewContact(name: "李娜", phones: ["12345"])]
        ))) { error in
            guard case let CrmError.Validation(field, _, errors) = error else {
                return XCTFail("expected a validation error, got \(error)")
            }
            XCTAssertEqual(field, "name")
            XCTAssertEqual(errors.map { $0.field }, ["name", "contacts[0].phones[0]"])
        }
        XCTAssertEqual(try crm.customers().count(filter: CustomerFilter()), 0)
        XCTAssertThrowsError(try crm.customers().check(input: NewCustomer(name: "", province: "火星"))) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }.sorted(), ["name", "region.province"])
        }
        try crm.customers().check(input: NewCustomer(name: "甲", province: "广东"))
        XCTAssertEqual(try crm.customers().count(filter: CustomerFilter()), 0)
    }

    func testBatchesCreateAllOrNothingAndNameEachBadRow() throws {
        let crm = try Crm.inMemory(user: "alice")
        XCTAssertThrowsError(try crm.customers().createMany(inputs: [NewCustomer(name: "甲"), NewCustomer(name: "")])) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }, ["customers[1].name"])
        }
        let customers = try crm.customers().createMany(inputs: [NewCustomer(name: "甲"), NewCustomer(name: "乙")])
        XCTAssertEqual(customers.map { $0.name }, ["甲", "乙"])
        let deals = crm.sales().opportunities()
        XCTAssertThrowsError(try deals.createMany(inputs: [
            NewOpportunity(name: "ERP", customerId: customers[0].id), NewOpportunity(name: " ", currency: "yuan"),
        ])) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }.sorted(), ["opportunities[1].currency", "opportunities[1].name"])
        }
        XCTAssertEqual(try deals.count(stage: nil, open: true, owner: nil), 0)
        XCTAssertThrowsError(try deals.createMany(inputs: [NewOpportunity(name: "ERP"), NewOpportunity(name: "CRM", owner: " ")])) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "opportunities[1].owner")
        }
        let made = try deals.createMany(inputs: (0..<50).map {
            NewOpportunity(name: "商机\($0)", customerId: customers[$0 % 2].id, amount: Decimal(1000 + $0))
        })
        XCTAssertEqual(Set(made.map { $0.code }).count, 50)
        let opened = Date(timeIntervalSince1970: 1_704_153_600) // 2024-01-02
        let closed = Date(timeIntervalSince1970: 1_709_251_200) // 2024-03-01
        let imported = try deals.createMany(inputs: [NewOpportunity(
            name: "旧单", amount: Decimal(5000), openedAt: opened,
            moves: [PastMove(stage: "intent", at: opened.addingTimeInterval(86400)), PastMove(stage: "lost", at: closed, lostReason: "价格偏高")]
        )])
        XCTAssertEqual(imported[0].stage, "lost")
        XCTAssertEqual(imported[0].lostAt, closed)
        XCTAssertEqual(try deals.history(id: imported[0].id).map { $0.change.to }, ["lead", "intent", "lost"])
        XCTAssertThrowsError(try deals.createMany(inputs: [NewOpportunity(name: "无原因", moves: [PastMove(stage: "lost", at: closed)])])) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "opportunities[0].moves[0].lost_reason")
        }
        let tickets = crm.service().tickets()
        XCTAssertThrowsError(try tickets.createMany(inputs: [
            NewTicket(subject: "无法登录", kind: .fault, priority: .high), NewTicket(subject: " ", kind: .inquiry, priority: .low),
        ])) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "tickets[1].subject")
        }
        let raised = try tickets.createMany(inputs: (0..<20).map {
            NewTicket(subject: "问题\($0)", kind: .inquiry, priority: .low, customerId: customers[0].id)
        })
        XCTAssertEqual(Set(raised.map { $0.code }).count, 20)
        XCTAssertTrue(raised.allSatisfy { $0.customerId == customers[0].id })
    }

    func testTheSameCallsOnPostgreSQL() throws {
        let env = ProcessInfo.processInfo.environment
        guard let server = env["GUANXI_TEST_POSTGRES"] else {
            XCTAssertNotEqual(env["CI"], "true", "CI=true but GUANXI_TEST_POSTGRES is not set")
            return
        }
        let crm = try Crm.open(path: server, user: "alice")
        // The server may hold earlier runs' rows: this run's own tag tells its customer apart.
        let tag = "swift-" + UUID().uuidString.prefix(8)
        let c = try crm.customers().create(input: NewCustomer(name: "华为技术有限公司 \(tag)", tags: [tag]))
        XCTAssertEqual(try crm.customers().get(id: c.id), c)
        XCTAssertEqual(try crm.customers().count(filter: CustomerFilter(tags: [tag])), 1)
        _ = try crm.customers().update(id: c.id, version: c.version, patch: CustomerPatch(status: .customer))
        XCTAssertThrowsError(try crm.customers().update(id: c.id, version: c.version, patch: CustomerPatch(name: "旧版本")))
        XCTAssertTrue(try crm.audit().verify().intact)
    }

    func testEncryptedPostgreSQLBacksUpAndRestoresIntoAnotherSchema() throws {
        let env = ProcessInfo.processInfo.environment
        guard let server = env["GUANXI_TEST_POSTGRES"] else {
            XCTAssertNotEqual(env["CI"], "true", "CI=true but GUANXI_TEST_POSTGRES is not set")
            return
        }
        // Schemas of this run's own on the shared server: `guanxi_schema` names them.
        let run = UUID().uuidString.prefix(8).lowercased()
        let source = "\(server) guanxi_schema=swift_\(run)_a"
        let target = "\(server) guanxi_schema=swift_\(run)_b"
        let key = generateFieldKey()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let backup = dir.appendingPathComponent("backup.db").path
        do {
            let crm = try Crm.openEncrypted(path: source, user: "admin", fieldKey: key)
            _ = try crm.customers().create(input: NewCustomer(name: "甲", contacts: [NewContact(name: "张伟", phones: ["13812345678"])]))
            XCTAssertEqual(try crm.contacts().findByPhone(phone: "138 1234 5678").first?.name, "张伟")
            XCTAssertTrue(try crm.files().backup(path: backup).intact)
        }
        XCTAssertThrowsError(try Crm.openEncrypted(path: source, user: "admin", fieldKey: generateFieldKey())) { error in
            guard case let CrmError.Encryption(kind, _) = error else { return XCTFail("expected encryption error, got \(error)") }
            XCTAssertEqual(kind, "wrong_key")
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: backup))
        XCTAssertNil(bytes.range(of: Data("13812345678".utf8)), "phone in clear in the backup")
        let restored = try restoreBackup(backup: backup, into: target, fieldKey: key)
        XCTAssertTrue(restored.intact)
        XCTAssertEqual(restored.entries, 3)
        let again = try Crm.openEncrypted(path: target, user: "admin", fieldKey: key)
        XCTAssertEqual(try again.contacts().findByPhone(phone: "13812345678").first?.phones, ["+8613812345678"])
    }

    func testStaleVersionIsAConflict() throws {
        let crm = try Crm.inMemory(user: "alice")
        let c = try huawei(crm)
        _ = try crm.customers().update(id: c.id, version: 1, patch: CustomerPatch(name: "新名字"))
        XCTAssertThrowsError(try crm.customers().update(id: c.id, version: 1, patch: CustomerPatch(name: "过期"))) { error in
            guard case let CrmError.Conflict(_, expected, actual) = error else {
                return XCTFail("expected a conflict, got \(error)")
            }
            XCTAssertEqual(expected, 1)
            XCTAssertEqual(actual, 2)
        }
        XCTAssertEqual(try crm.customers().get(id: c.id).name, "新名字")
        XCTAssertThrowsError(try crm.customers().get(id: UUID())) { error in
            guard case CrmError.NotFound = error else { return XCTFail("expected not found, got \(error)") }
        }
    }

    func testNativeTypes() throws {
        let crm = try Crm.inMemory(user: "alice")
        _ = try crm.customFields().create(field: CustomField(entity: .customer, key: "budget", label: "预算", fieldType: .decimal))
        let before = Date().addingTimeInterval(-5)
        let c = try crm.customers().create(input: NewCustomer(
            name: "甲", custom: ["budget": .decimal(value: Foundation.Decimal(string: "1200000.50")!)]
        ))
        XCTAssertGreaterThan(c.createdAt, before)
        guard case let .decimal(value)? = c.custom["budget"] else { return XCTFail("budget \(String(describing: c.custom["budget"]))") }
        XCTAssertEqual(value, Foundation.Decimal(string: "1200000.5")!)
        let i = try crm.interactions().create(customer: c.id, input: NewInteraction(kind: .visit, content: "拜访", nextContactOn: DateComponents(year: 2031, month: 1, day: 2)))
        XCTAssertEqual(i.nextContactOn, DateComponents(year: 2031, month: 1, day: 2))
        XCTAssertEqual(try crm.interactions().list(customer: c.id), [i])
    }

    func testEventsReachASwiftListener() throws {
        let crm = try Crm.inMemory(user: "alice")
        let collector = Collector()
        let id = crm.subscribe(listener: collector)
        let c = try huawei(crm)
        XCTAssertEqual(collector.seen, ["customer_created", "tag_added", "contact_added"])
        // Typed details, not JSON text.
        XCTAssertEqual(collector.events[0].detail, .customerCreated(customer: c.id, code: c.code))
        guard case let .tagAdded(customer, _) = collector.events[1].detail else { return XCTFail("\(collector.events[1])") }
        XCTAssertEqual(customer, c.id)
        XCTAssertTrue(crm.unsubscribe(subscription: id))
        _ = try crm.tags().add(customer: c.id, tag: "重点")
        XCTAssertEqual(collector.seen.count, 3)
    }

    func testAuditChainAndBackupRestore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let crm = try Crm.open(path: dir.appendingPathComponent("crm.db").path, user: "alice")
        _ = try huawei(crm)
        let check = try crm.audit().verify()
        XCTAssertTrue(check.intact)
        XCTAssertEqual(check.entries, 2)
        let copy = try crm.files().backup(path: dir.appendingPathComponent("backup.db").path)
        XCTAssertTrue(copy.intact)
        XCTAssertEqual(copy.entries, 3)
        let backupBytes = try Data(contentsOf: dir.appendingPathComponent("backup.db"))
        let restored = try restoreBackup(
            backup: dir.appendingPathComponent("backup.db").path,
            into: dir.appendingPathComponent("restored.db").path
        )
        XCTAssertTrue(restored.intact)
        // Reading and restoring a backup leaves its bytes as they were and no file beside it.
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("backup.db")), backupBytes)
        let beside = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasPrefix("backup") || $0.hasPrefix("restored") }.sorted()
        XCTAssertEqual(beside, ["backup.db", "restored.db"])
        let again = try Crm.open(path: dir.appendingPathComponent("restored.db").path, user: "bob")
        XCTAssertEqual(try again.customers().count(filter: CustomerFilter()), 1)
        XCTAssertTrue(try again.audit().verify().intact)
    }

    func testContactsTagsFieldsAndTimeline() throws {
        let crm = try Crm.inMemory(user: "alice")
        let c = try huawei(crm)
        let li = try crm.contacts().create(customer: c.id, contact: NewContact(name: "李娜", phones: ["139 0000 1111"], role: .evaluator))
        let updated = try crm.contacts().update(contact: li.id, version: li.version, patch: ContactPatch(title: "采购经理", clearRole: true))
        XCTAssertEqual(updated.title, "采购经理")
        XCTAssertNil(updated.role)
        XCTAssertTrue(try crm.contacts().setPrimary(contact: li.id).primary)
        let current = try crm.contacts().list(customer: c.id).first { $0.id == li.id }!
        try crm.contacts().delete(contact: li.id, version: current.version)
        XCTAssertEqual(try crm.contacts().list(customer: c.id).map { $0.name }, ["张伟"])
        _ = try crm.tags().create(name: "重点", group: "等级")
        XCTAssertEqual(try crm.tags().list().map { $0.name }, ["VIP", "重点"])
        _ = try crm.customFields().create(field: CustomField(entity: .contact, key: "wechat", label: "微信", fieldType: .text))
        XCTAssertEqual(try crm.customFields().list(entity: .contact).map { $0.key }, ["wechat"])
        _ = try crm.interactions().create(customer: c.id, input: NewInteraction(kind: .call, content: "电话"))
        let timeline = try crm.customers().timeline(customer: c.id)
        XCTAssertEqual(timeline.first?.change?.entity, .customer)
        XCTAssertNotNil(timeline.last?.interaction)
    }

    func testPasswordsAndTotp() throws {
        let phc = try hashPassword(password: "correct horse battery staple")
        XCTAssertTrue(phc.hasPrefix("$argon2id$"))
        XCTAssertTrue(try verifyPassword(password: "correct horse battery staple", passwordHash: phc))
        XCTAssertFalse(try verifyPassword(password: "wrong", passwordHash: phc))
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // RFC 6238's "12345678901234567890"
        let at = Date(timeIntervalSince1970: 59)
        XCTAssertEqual(try totpCode(secretBase32: secret, at: at, digits: 8, algorithm: .sha1), "94287082")
        XCTAssertTrue(try verifyTotp(
            secretBase32: secret, code: "94287082", at: Date(timeIntervalSince1970: 89), digits: 8, algorithm: .sha1, driftSteps: 1
        ))
    }

    func testFilePersistsAcrossHandles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("crm.db").path
        var code = ""
        do {
            let crm = try Crm.open(path: path, user: "alice")
            code = try huawei(crm).code
        }
        // Reopened with the faster commit durability: the data is the same file's.
        let again = try Crm.openWith(path: path, user: "bob", durability: .normal)
        let c = try again.customers().getByCode(code: code)
        XCTAssertEqual(c.createdBy, "alice")
        XCTAssertEqual(try again.audit().entries(entityId: c.id.uuidString.lowercased()).map { $0.action }, [.create])
        // Logged values are typed, not JSON text.
        let changes = try again.audit().entries(entityId: c.id.uuidString.lowercased())[0].changes
        let new = Dictionary(uniqueKeysWithValues: changes.map { ($0.field, $0.new) })
        XCTAssertEqual(new["name"], .text(value: "华为技术有限公司"))
        XCTAssertEqual(new["tags"], .items(items: [.text(value: "VIP")]))
    }

    func testRolesScopesMaskingAndElevation() throws {
        let crm = try Crm.inMemory(user: "root")
        let root = try proven(crm, "root")
        try root.access().setDepartment(department: Department(id: "east", name: "华东", parent: nil))
        try root.access().setDepartment(department: Department(id: "sh", name: "上海", parent: "east"))
        try root.access().setUser(user: User(id: "root", name: "管理员", department: nil, roles: ["administrator"], regions: [], active: true))
        try root.access().setUser(user: User(id: "li", name: "李经理", department: "east", roles: ["sales_manager"], regions: [], active: true))
        try root.access().setUser(user: User(id: "wang", name: "王伟", department: "sh", roles: ["sales_rep"], regions: [], active: true))
        try root.access().setUser(user: User(id: "ma", name: "马", department: nil, roles: ["marketing"], regions: [], active: true))
        let wang = try crm.asUser(user: "wang")
        let mine = try wang.customers().create(input: NewCustomer(
            name: "王的客户", contacts: [NewContact(name: "张伟", phones: ["13812345678"])]
        ))
        let other = try root.customers().create(input: NewCustomer(name: "总部客户"))
        XCTAssertEqual(try wang.customers().listAll(filter: CustomerFilter()).map { $0.code }, [mine.code])
        XCTAssertEqual(try crm.asUser(user: "li").customers().count(filter: CustomerFilter()), 1)
        XCTAssertThrowsError(try wang.customers().get(id: other.id)) { error in
            guard case let CrmError.PermissionDenied(action, _) = error else {
                return XCTFail("expected permission denied, got \(error)")
            }
            XCTAssertEqual(action, "read")
        }
        let why = try wang.access().explain(action: .read, entity: .customer, record: other.id, user: nil)
        XCTAssertFalse(why.allowed)
        XCTAssertEqual(try crm.asUser(user: "ma").contacts().list(customer: mine.id).first?.phones, ["138****5678"])
        let li = try crm.asUser(user: "li")
        XCTAssertThrowsError(try li.customers().export(filter: CustomerFilter())) { error in
            guard case let CrmError.ElevationRequired(action, _) = error else {
                return XCTFail("expected elevation required, got \(error)")
            }
            XCTAssertEqual(action, "export")
        }
        XCTAssertEqual(try proven(li, "li").customers().export(filter: CustomerFilter()).count, 1)
        XCTAssertThrowsError(try li.elevated(until: Date().addingTimeInterval(600)).customers().export(filter: CustomerFilter()))
        XCTAssertTrue(try root.audit().verify().intact)
    }

    func testProvenElevationWithheldDuplicatesAndExplainOnAnyRecord() throws {
        let crm = try Crm.inMemoryWith(user: "root", trustAssertedElevation: false, elevationVerifier: Idp())
        let root = try proven(crm, "root")
        try root.access().setUser(user: User(id: "root", name: "管理员", department: nil, roles: ["administrator"], regions: [], active: true))
        try root.access().setUser(user: User(id: "wang", name: "王伟", department: nil, roles: ["sales_rep"], regions: [], active: true))
        try root.access().setUser(user: User(id: "zhao", name: "赵", department: nil, roles: ["sales_rep"], regions: [], active: true))
        XCTAssertThrowsError(try crm.access().elevate(proof: .password(password: "wrong password"))) { error in
            guard case let CrmError.PermissionDenied(action, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(action, "elevate")
        }
        XCTAssertTrue(try crm.access().elevate(proof: .host(token: "idp-ok:root")).audit().verify().intact)
        XCTAssertThrowsError(try crm.access().elevate(proof: .host(token: "idp-ok:wang")))
        XCTAssertThrowsError(try crm.elevated(until: Date().addingTimeInterval(86_400)).access().removeRole(id: "x")) { error in
            guard case CrmError.ElevationRequired = error else { return XCTFail("\(error)") }
        }
        let wang = try crm.asUser(user: "wang")
        let zhao = try crm.asUser(user: "zhao")
        let theirs = try wang.customers().create(input: NewCustomer(
            name: "华为技术有限公司", contacts: [NewContact(name: "张伟", phones: ["13812345678"])]))
        let found = try zhao.duplicates().find(input: NewCustomer(
            name: "某某公司", contacts: [NewContact(name: "王", phones: ["13812345678"])]))
        XCTAssertEqual(found.count, 1)
        XCTAssertNil(found[0].id)
        XCTAssertEqual(found[0].code, "")
        XCTAssertEqual(found[0].reasons[0].text, "same phone as a customer outside your access scope")
        let ticket = try wang.service().tickets().create(input: NewTicket(subject: "发票开错了", kind: .inquiry, priority: .medium, customerId: theirs.id))
        XCTAssertEqual(try wang.service().tickets().get(id: ticket.id).code, ticket.code)
        XCTAssertTrue(try wang.access().explain(action: .read, entity: .ticket, record: ticket.id, user: nil).allowed)
        XCTAssertFalse(try zhao.access().explain(action: .read, entity: .ticket, record: ticket.id, user: nil).allowed)
    }

    func testMatchRulesLinkingTrainingAndTheBlockingReport() throws {
        let crm = try Crm.inMemory(user: "alice")
        _ = try crm.customFields().create(field: CustomField(entity: .customer, key: "date_of_birth", label: "出生日期", fieldType: .date))
        let defaults = try crm.duplicates().rules()
        XCTAssertEqual(defaults.scoring, .weighted)
        XCTAssertTrue(defaults.rules.contains { $0.field == .identifier(scheme: nil) })
        var wrong = defaults
        wrong.rules.append(MatchRule(field: .phone, comparison: .date(min: 0.9), weight: 1.0, only: nil))
        wrong.threshold = 0
        XCTAssertThrowsError(try crm.duplicates().setRules(rules: wrong)) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(Set(errors.map { $0.field }), ["rules[\(wrong.rules.count - 1)].comparison", "threshold"])
        }
        let dob = MatchField.custom(key: "date_of_birth")
        let people = MatchRules(
            rules: [
                MatchRule(field: .givenName, comparison: .jaroWinkler(min: 0.85), weight: 1, only: nil),
                MatchRule(field: .surname, comparison: .jaroWinkler(min: 0.85), weight: 1, only: nil),
                MatchRule(field: dob, comparison: .date(min: 0.9), weight: 1, only: nil),
                MatchRule(field: .address, comparison: .qGram(min: 0.7), weight: 1, only: nil),
            ],
            threshold: 0.5,
            scoring: .probabilistic(model: nil),
            blocking: Blocking(keys: [.exact(field: .surname)], maxBlock: 100)
        )
        XCTAssertEqual(try crm.duplicates().setRules(rules: people), people)
        func person(_ name: String, _ born: DateComponents, _ address: String, _ source: String) throws -> Customer {
            try crm.customers().create(input: NewCustomer(
                name: name, kind: .individual, address: address, tags: [source], custom: ["date_of_birth": .date(value: born)]
            ))
        }
        let ann = try person("Ann Lee", DateComponents(year: 1980, month: 3, day: 7), "12 Ocean Street Sydney", "crm")
        let anne = try person("Anne Lee", DateComponents(year: 1980, month: 7, day: 3), "12 Ocean St Sydney", "shop")
        let bob = try person("Bob Stone", DateComponents(year: 1975, month: 1, day: 2), "9 Hill Road Perth", "crm")
        let bob2 = try person("Bob Stone", DateComponents(year: 1975, month: 1, day: 2), "9 Hill Road Perth", "shop")
        let carl = try person("Carl Wu", DateComponents(year: 1990, month: 5, day: 5), "1 King Street Hobart", "crm")
        _ = try person("Eve Hart", DateComponents(year: 1968, month: 2, day: 2), "7 Bay Road Cairns", "shop")
        let linked = try crm.duplicates().link(left: CustomerFilter(tags: ["crm"]), right: CustomerFilter(tags: ["shop"]))
        XCTAssertEqual(Set(linked.clusters.map { Set($0.members) }), [Set([ann.id, anne.id]), Set([bob.id, bob2.id])])
        XCTAssertNotNil(linked.estimated)
        let reasons = linked.clusters.flatMap { $0.links }.flatMap { $0.to.reasons }
        XCTAssertTrue(reasons.contains { $0.field == dob && $0.matchWeight != nil && $0.text.contains(": +") })
        let trained = try crm.duplicates().train(filter: CustomerFilter())
        guard case let .probabilistic(model?) = trained.scoring else { return XCTFail("\(trained)") }
        XCTAssertEqual(model.fields.count, 4)
        try crm.duplicates().markNotDuplicate(a: carl.id, b: bob.id)
        let learned = try crm.duplicates().learn(same: [KnownPair(a: ann.id, b: anne.id), KnownPair(a: bob.id, b: bob2.id)])
        guard case let .probabilistic(learnedModel?) = learned.scoring else { return XCTFail("\(learned)") }
        XCTAssertGreaterThan(learnedModel.fields[1].m, learnedModel.fields[1].u)
        _ = try crm.duplicates().setRules(rules: trained)
        let report = try crm.duplicates().blockingReport(known: [KnownPair(a: ann.id, b: anne.id), KnownPair(a: carl.id, b: bob.id)])
        XCTAssertEqual(report.known, 2)
        XCTAssertEqual(report.compared, 1)
        XCTAssertEqual(report.missed, [KnownPair(a: carl.id, b: bob.id)])
        _ = try crm.duplicates().setRules(rules: defaults)
        let me = NewCustomer(name: "", kind: .individual, contacts: [NewContact(name: "本人", phones: ["13812345678"])])
        let nameless = try crm.customers().create(input: me)
        XCTAssertEqual(nameless.name, "")
        XCTAssertEqual(try crm.duplicates().find(input: me).map { $0.id }, [nameless.id])
    }

    func testFieldEncryptionAndKeyRotation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("crm.db").path
        let key = generateFieldKey()
        let newKey = generateFieldKey()
        do {
            let crm = try Crm.openEncrypted(path: path, user: "admin", fieldKey: key)
            _ = try crm.customers().create(input: NewCustomer(
                name: "甲", contacts: [NewContact(name: "张伟", phones: ["13812345678"], idNumber: "11010519491231002X")]
            ))
            XCTAssertEqual(try crm.contacts().findByIdNumber(idNumber: "11010519491231002X").first?.name, "张伟")
            XCTAssertEqual(try crm.contacts().findByPhone(phone: "138 1234 5678").first?.name, "张伟")
            XCTAssertEqual(try proven(crm, "admin").access().rotateFieldKey(key: newKey), 1)
        }
        XCTAssertThrowsError(try Crm.openEncrypted(path: path, user: "admin", fieldKey: key)) { error in
            guard case let CrmError.Encryption(kind, _) = error else { return XCTFail("expected encryption error, got \(error)") }
            XCTAssertEqual(kind, "wrong_key")
        }
        let again = try Crm.openEncrypted(path: path, user: "admin", fieldKey: newKey)
        XCTAssertEqual(try again.contacts().findByPhone(phone: "13812345678").first?.phones, ["+8613812345678"])
    }

    func testSalesMovesHistoryAndRefusedMoves() throws {
        let crm = try Crm.inMemory(user: "alice")
        let standard = try crm.sales().pipeline(key: "standard")
        XCTAssertEqual(standard.stages.map { $0.key }, ["lead", "intent", "proposal", "negotiation", "won", "lost"])
        let t0 = Date(timeIntervalSince1970: 1_704_067_200) // 2024-01-01
        let line = ProductLine(product: "GTX Pro", quantity: Foundation.Decimal(3), unitPrice: Foundation.Decimal(string: "4999.99")!, discount: Foundation.Decimal(10))
        var o = try crm.sales().opportunities().create(input: NewOpportunity(name: "ERP 升级", lines: [line], openedAt: t0))
        XCTAssertEqual(o.amount, Foundation.Decimal(string: "14989.97")!)
        XCTAssertEqual(o.stage, "lead")
        o = try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "intent", lostReason: nil, at: t0.addingTimeInterval(86400))
        o = try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "proposal", lostReason: nil, at: t0.addingTimeInterval(2 * 86400))
        XCTAssertThrowsError(try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "negotiation", lostReason: nil, at: nil)) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("expected validation, got \(error)") }
            XCTAssertEqual(field, "expected_close")
        }
        XCTAssertThrowsError(try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "signed", lostReason: nil, at: nil)) { error in
            guard case let CrmError.Validation(field, _, errors) = error else { return XCTFail("expected validation, got \(error)") }
            XCTAssertEqual(field, "stage")
            XCTAssertEqual(errors.first?.allowed, ["lead", "intent", "proposal", "negotiation", "won", "lost"])
        }
        XCTAssertEqual(try crm.sales().opportunities().get(id: o.id), o)
        o = try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "lost", lostReason: "价格偏高", at: t0.addingTimeInterval(5 * 86400))
        XCTAssertEqual(o.lostReason, "价格偏高")
        let history = try crm.sales().opportunities().history(id: o.id)
        XCTAssertEqual(history.map { $0.change.to }, ["lead", "intent", "proposal", "lost"])
        XCTAssertEqual(history[2].fromEnteredAt, t0.addingTimeInterval(86400))
    }

    func testSalesReportLeadsAndAgenda() throws {
        let crm = try Crm.inMemory(user: "alice")
        let t0 = Date(timeIntervalSince1970: 1_704_067_200)
        for i in 0..<12 {
            let opened = t0.addingTimeInterval(Double(i) * 86400)
            var o = try crm.sales().opportunities().create(input: NewOpportunity(name: "商机\(i)", amount: Foundation.Decimal(100 + i), openedAt: opened))
            o = try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "intent", lostReason: nil, at: opened.addingTimeInterval(3600))
            if i % 2 == 0 {
                _ = try crm.sales().opportunities().moveTo(id: o.id, version: o.version, stage: "won", lostReason: nil, at: opened.addingTimeInterval(4 * 86400))
            }
        }
        let r = try crm.sales().report(query: SalesQuery())
        XCTAssertEqual(r.won.count, 6)
        XCTAssertEqual(r.openCount, 6)
        XCTAssertEqual(r.winRate, Foundation.Decimal(1))
        XCTAssertEqual(r.won.medianDays, Foundation.Decimal(4))
        XCTAssertEqual(r.funnel.first { $0.stage == "intent" }?.reached, 12)
        _ = try crm.sales().setLeadRules(rules: LeadRules(grading: [GradeRule(grade: .a, whenAll: [.sourceIn(sources: ["行业峰会"])])], assignment: []))
        XCTAssertEqual(try crm.sales().leadRules().grading.first?.whenAll, [.sourceIn(sources: ["行业峰会"])])
        let lead = try crm.sales().leads().create(input: NewLead(name: "王磊", phone: "13800138000", source: "行业峰会"))
        XCTAssertEqual(lead.grade, .a)
        let conv = try crm.sales().leads().convert(id: lead.id, opportunity: NewOpportunity(name: "扩容"))
        XCTAssertFalse(conv.linkedExisting)
        XCTAssertNotNil(conv.opportunityId)
        let task = try crm.sales().tasks().create(title: "回访", dueAt: Date().addingTimeInterval(-60), opportunityId: nil, owner: nil)
        XCTAssertEqual(try crm.sales().tasks().get(id: task.id), task)
        _ = try crm.sales().tasks().create(title: "发报价单", dueAt: Date().addingTimeInterval(86400), opportunityId: nil, owner: nil)
        XCTAssertEqual(try crm.sales().tasks().count(owner: nil, open: true), 2)
        let firstTasks = try crm.sales().tasks().list(owner: nil, open: nil, page: PageRequest(limit: 1))
        XCTAssertEqual(firstTasks.items.map { $0.id }, [task.id])
        let restTasks = try crm.sales().tasks().list(owner: nil, open: nil, page: PageRequest(after: firstTasks.next, limit: 1))
        XCTAssertEqual(restTasks.items.map { $0.title }, ["发报价单"])
        XCTAssertNil(restTasks.next)
        let agenda = try crm.sales().agenda(user: nil, at: Date())
        XCTAssertTrue(agenda.overdue.contains { if case let .task(t) = $0 { return t.id == task.id } else { return false } })
    }
    func testTicketsSlaAndKnowledgeBase() throws {
        let crm = try Crm.inMemory(user: "alice")
        var settings = try crm.service().settings()
        XCTAssertEqual(settings.atRiskPercent, 20)
        settings.groups = [SkillGroup(key: "l1", name: "一线", agents: [Agent(user: "amy")])]
        settings.defaultGroup = "l1"
        _ = try crm.service().setSettings(settings: settings)
        let created = Date().addingTimeInterval(-3 * 86400)
        var t = try crm.service().tickets().create(input: NewTicket(subject: "无法登录", kind: .fault, priority: .urgent, description: "我要投诉", createdAt: created))
        XCTAssertEqual(t.status, .assigned)
        XCTAssertEqual(t.assignee, "amy")
        XCTAssertEqual(t.riskFlags, ["投诉"])
        XCTAssertThrowsError(try crm.service().tickets().moveTo(id: t.id, version: t.version, status: .closed, resolution: nil, at: nil)) { e in
            guard case CrmError.InvalidState = e else { return XCTFail("\(e)") }
        }
        t = try crm.service().tickets().moveTo(id: t.id, version: t.version, status: .inProgress, resolution: nil, at: created.addingTimeInterval(600))
        t = try crm.service().tickets().reply(id: t.id, version: t.version, body: "请提供截图", public: true, at: created.addingTimeInterval(1200))
        t = try crm.service().tickets().moveTo(id: t.id, version: t.version, status: .resolved, resolution: "已重置", at: nil)
        t = try crm.service().tickets().rate(id: t.id, version: t.version, score: 4, comment: nil)
        XCTAssertEqual(t.satisfaction, 4)
        let sla = try crm.service().slaOverview(filter: TicketFilter(), at: Date())
        XCTAssertEqual(sla.count, 1)
        XCTAssertEqual(sla[0].policy, "urgent")
        XCTAssertEqual(try crm.service().tickets().entries(id: t.id).map { kindOf($0.change) }, ["created", "assigned", "status", "reply", "status", "rated"])
        let r = try crm.service().report(filter: TicketFilter(), period: .day, at: nil)
        XCTAssertEqual(r.tickets, 1)
        XCTAssertEqual(r.csatMean, Foundation.Decimal(4))
        let refund = try crm.kb().create(input: NewArticle(title: "如何申请退款", body: "在订单详情页点击申请退款。", tags: ["退款"]))
        _ = try crm.kb().create(input: NewArticle(title: "Reset your password", body: "Use the forgot-password link."))
        XCTAssertEqual(try crm.kb().search(query: ArticleQuery(text: "退款")).map { $0.article.id }, [refund.id])
        XCTAssertEqual(try crm.kb().search(query: ArticleQuery(text: "password")).count, 1)
        let q = try crm.service().tickets().create(input: NewTicket(subject: "我想退款", kind: .complaint, priority: .medium))
        XCTAssertEqual(try crm.kb().suggest(ticket: q.id, limit: 3).first?.article.id, refund.id)
    }
    func testTicketTransferEscalationPriorityAndSearchFilters() throws {
        let crm = try Crm.inMemory(user: "alice")
        var settings = try crm.service().settings()
        settings.groups = [
            SkillGroup(key: "l1", name: "一线", agents: [Agent(user: "amy"), Agent(user: "bob")], escalateTo: "l2"),
            SkillGroup(key: "l2", name: "二线", agents: [Agent(user: "carl")], strategy: .leastLoaded),
        ]
        settings.defaultGroup = "l1"
        _ = try crm.service().setSettings(settings: settings)
        let first = try crm.service().tickets().create(input: NewTicket(subject: "发票抬头错误", kind: .inquiry, priority: .low))
        var t = try crm.service().tickets().create(input: NewTicket(subject: "网络中断", kind: .fault, priority: .medium))
        XCTAssertEqual([first.assignee, t.assignee], ["amy", "bob"])
        t = try crm.service().tickets().assign(id: t.id, version: t.version, agent: "amy", group: nil, note: "换人")
        XCTAssertEqual(t.assignee, "amy")
        t = try crm.service().tickets().escalate(id: t.id, version: t.version, note: "升级")
        XCTAssertEqual(t.group, "l2")
        XCTAssertEqual(t.assignee, "carl")
        XCTAssertEqual(t.escalationLevel, 1)
        XCTAssertThrowsError(try crm.service().tickets().escalate(id: t.id, version: t.version, note: nil)) { e in
            guard case CrmError.InvalidState = e else { return XCTFail("\(e)") }
        }
        t = try crm.service().tickets().setPriority(id: t.id, version: t.version, priority: .urgent)
        XCTAssertEqual(t.sla?.policy, "urgent")
        XCTAssertEqual(try crm.service().tickets().sla(id: t.id, at: Date())?.policy, "urgent")
        XCTAssertEqual(try crm.service().tickets().listAll(filter: TicketFilter(assignee: "carl")).map { $0.id }, [t.id])
        let entries = try crm.service().tickets().entries(id: t.id)
        XCTAssertEqual(entries[0].change, .created)
        let reasons: [AssignReason] = entries.compactMap {
            if case let .assigned(_, _, _, _, reason, _) = $0.change { return reason } else { return nil }
        }
        XCTAssertEqual(reasons.count, 3)
        XCTAssertEqual(reasons[1], .transfer)
        XCTAssertEqual(reasons[2], .escalation)

        let a = try crm.kb().create(input: NewArticle(title: "退款到账时间", body: "退款三个工作日到账。", tags: ["退款"], category: "billing"))
        let draft = try crm.kb().create(input: NewArticle(title: "退款新政策", body: "草稿：退款规则调整。", category: "billing", published: false))
        XCTAssertEqual(try crm.kb().get(id: a.id), a)
        XCTAssertEqual(try crm.kb().search(query: ArticleQuery(text: "退款")).map { $0.article.id }, [a.id])
        XCTAssertTrue(try crm.kb().search(query: ArticleQuery(text: "退款", includeUnpublished: true)).contains { $0.article.id == draft.id })
        XCTAssertEqual(try crm.kb().search(query: ArticleQuery(text: "退款", tag: "退款", includeUnpublished: true)).map { $0.article.id }, [a.id])
    }

    func testBehaviourEventsAndSegments() throws {
        let crm = try Crm.inMemory(user: "alice")
        let now = Date()
        let wang = try crm.customers().create(input: NewCustomer(name: "王芳", kind: .individual))
        let li = try crm.customers().create(input: NewCustomer(name: "李娜", kind: .individual))
        func view(_ who: Customer, _ daysAgo: Double, _ external: String? = nil) -> BehaviourEvent {
            BehaviourEvent(customerId: who.id, name: "page_view", at: now.addingTimeInterval(-daysAgo * 86_400),
                           properties: ["url": .text(value: "/courses/ielts")], externalId: external)
        }
        var blank = view(wang, 2)
        blank.name = " "
        XCTAssertThrowsError(try crm.marketing().events().record(events: [view(wang, 1), blank])) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }, ["events[1].name"])
        }
        let first = try crm.marketing().events().record(events: [view(wang, 1, "w1"), view(wang, 2), view(wang, 20), view(li, 1), view(li, 2)])
        let again = try crm.marketing().events().record(events: [view(wang, 1, "w1")])
        XCTAssertEqual(first.recorded.count, 5)
        XCTAssertEqual(again.duplicates, ["w1"])
        let page = try crm.marketing().events().list(customer: wang.id, since: nil, until: nil, page: PageRequest(limit: 2))
        XCTAssertEqual(page.items.count, 2)
        XCTAssertNotNil(page.next)
        XCTAssertNil(page.items[0].contactId)
        var stranger = view(wang, 1)
        stranger.contactId = UUID()
        XCTAssertThrowsError(try crm.marketing().events().record(events: [stranger])) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }, ["events[0].contact_id"])
        }
        let rule = "count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3 AND NOT tag:雅思学员"
        XCTAssertEqual(try crm.marketing().segments().members(segmentText: rule).map { $0.name }, ["王芳"])
        XCTAssertEqual(try crm.marketing().segments().count(segmentText: rule), 1)
        let everyone = "NOT tag:雅思学员"
        let firstMembers = try crm.marketing().segments().membersPage(segmentText: everyone, page: PageRequest(limit: 1))
        let restMembers = try crm.marketing().segments().membersPage(segmentText: everyone, page: PageRequest(after: firstMembers.next, limit: 1))
        XCTAssertEqual(firstMembers.items.count + restMembers.items.count, 2)
        XCTAssertNil(restMembers.next)
        XCTAssertEqual((firstMembers.items + restMembers.items).map { $0.name }, try crm.marketing().segments().members(segmentText: everyone).map { $0.name })
        let why = try crm.marketing().segments().explain(customer: li.id, segmentText: rule)
        XCTAssertFalse(why[0].holds)
        XCTAssertEqual(why[1].count, 2)
        XCTAssertThrowsError(try crm.marketing().segments().members(segmentText: "tag:VIP AND\n  status >")) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "segment")
        }

        XCTAssertNil(try crm.marketing().settings().eventRetentionDays)
        _ = try crm.marketing().setSettings(settings: MarketingSettings(eventRetentionDays: 10))
        XCTAssertThrowsError(try crm.marketing().events().record(events: [view(wang, 11)])) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }, ["events[0].at"])
        }
        let purged = try crm.marketing().events().purge()
        XCTAssertEqual(purged.purged, 1)
        XCTAssertNotNil(purged.before)
    }

    func testSavedSegmentsFollowEventsWithTheirTagsReferencesAndHistory() throws {
        let crm = try Crm.inMemory(user: "alice")
        let now = Date()
        let wang = try crm.customers().create(input: NewCustomer(name: "王芳", kind: .individual))
        let li = try crm.customers().create(input: NewCustomer(name: "李娜", kind: .individual, tags: ["VIP"]))
        let segments = crm.marketing().segments()
        let rule = "count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3 AND count(event = enroll) = 0"
        let saved = try segments.save(segment: SavedSegment(name: "雅思意向", expression: rule, tag: "雅思意向"))
        XCTAssertEqual(saved.tag, "雅思意向")
        XCTAssertFalse(saved.sticky)
        let views = [1.0, 2.0, 3.0].map { d in
            BehaviourEvent(customerId: wang.id, name: "page_view", at: now.addingTimeInterval(-d * 86_400),
                           properties: ["url": .text(value: "/ielts")])
        }
        _ = try crm.marketing().events().record(events: views)
        let current = try segments.current(name: "雅思意向", page: PageRequest(limit: 10))
        XCTAssertEqual(current.items.map { $0.customerId }, [wang.id])
        XCTAssertEqual(current.items.first?.enteredBecause, .matched)
        XCTAssertTrue(try crm.customers().get(id: wang.id).tags.contains("雅思意向"))
        _ = try crm.marketing().events().record(events: [BehaviourEvent(customerId: wang.id, name: "enroll", at: now)])
        XCTAssertTrue(try segments.current(name: "雅思意向", page: PageRequest(limit: 10)).items.isEmpty)
        XCTAssertFalse(try crm.customers().get(id: wang.id).tags.contains("雅思意向"))
        let stays = try segments.history(name: "雅思意向", customer: wang.id, page: PageRequest(limit: 10)).items
        XCTAssertEqual(stays.map { $0.exitedBecause }, [.noLongerMatches])
        _ = try segments.include(name: "雅思意向", customers: [li.id])
        XCTAssertEqual(try segments.get(name: "雅思意向").includes, [li.id])
        XCTAssertTrue(try segments.reevaluate(name: "雅思意向").entered.isEmpty)
        XCTAssertTrue(try segments.reevaluateDue().exited.isEmpty)
        XCTAssertEqual(try segments.current(name: "雅思意向", page: PageRequest(limit: 10)).items.map { $0.enteredBecause }, [.included])
        _ = try segments.exclude(name: "雅思意向", customers: [li.id])
        _ = try segments.resetManual(name: "雅思意向", customers: [li.id])
        _ = try segments.save(segment: SavedSegment(name: "vip", expression: "tag:VIP"))
        _ = try segments.save(segment: SavedSegment(name: "vip_ielts", expression: "segment:vip AND segment:雅思意向"))
        XCTAssertEqual(try segments.list().map { $0.name }, ["vip", "vip_ielts", "雅思意向"])
        XCTAssertThrowsError(try segments.save(segment: SavedSegment(name: "vip", expression: "segment:vip_ielts"))) { error in
            guard case let CrmError.Validation(_, reason, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("cycle"), reason)
        }
        try segments.delete(name: "vip_ielts")
        XCTAssertThrowsError(try segments.get(name: "vip_ielts")) { error in
            guard case CrmError.NotFound = error else { return XCTFail("expected not found, got \(error)") }
        }
        // A segment built as a typed tree (pre-order nodes) instead of text.
        let tree: [SegmentNode] = [
            .and(parts: 2),
            .tag(name: "VIP"),
            .count(of: .event(name: "page_view"),
                   filters: [PropertyTest(key: "url", op: .contains, value: .one(value: .text(value: "ielts")))],
                   withinDays: 30, op: .ge, n: 3),
        ]
        let text = try segments.toText(nodes: tree)
        XCTAssertEqual(try segments.parse(segmentText: text), tree)
        XCTAssertEqual(try segments.count(segmentText: text), 0)
        XCTAssertThrowsError(try segments.toText(nodes: [.or(parts: 2), .tag(name: "VIP")])) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "segment")
        }
        XCTAssertThrowsError(try segments.toText(nodes: [.not, .field(field: "colour", op: .eq, value: .one(value: .text(value: "red")))])) { error in
            guard case let CrmError.Validation(field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "segment[1].field")
        }
    }

    func testIdentifiersAreCheckedStoredReplacedAndMatched() throws {
        let crm = try Crm.inMemory(user: "alice")
        XCTAssertThrowsError(try crm.customers().create(input: NewCustomer(name: "华为技术有限公司", identifiers: [
            Identifier(scheme: .uscc, value: "914403001922038217"), Identifier(scheme: .passport, value: "x")]))) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }, ["identifiers[0]", "identifiers[1]"])
        }
        let c = try crm.customers().create(input: NewCustomer(name: "华为技术有限公司", identifiers: [
            Identifier(scheme: .passport, value: "e 1234 5678"), Identifier(scheme: .uscc, value: "9144 0300 1922 0382 16")]))
        XCTAssertEqual(c.identifiers, [Identifier(scheme: .uscc, value: "914403001922038216"),
                                       Identifier(scheme: .passport, value: "E12345678")])
        let found = try crm.duplicates().find(input: NewCustomer(
            name: "深圳某某通信", identifiers: [Identifier(scheme: .other, value: "914403001922038216")]))
        XCTAssertEqual(found.map { $0.id }, [c.id])
        XCTAssertEqual(found[0].reasons[0].field, .identifier(scheme: nil))
        let replaced = try crm.customers().update(id: c.id, version: c.version, patch: CustomerPatch(
            identifiers: [Identifier(scheme: .other, value: "DUNS 123456789")]))
        XCTAssertEqual(replaced.identifiers, [Identifier(scheme: .other, value: "DUNS 123456789")])
        let cleared = try crm.customers().update(id: c.id, version: replaced.version, patch: CustomerPatch(identifiers: []))
        XCTAssertTrue(cleared.identifiers.isEmpty)
    }

    func testDuplicatesMergeImportAndExport() throws {
        let crm = try Crm.inMemory(user: "alice")
        let first = try crm.customers().create(input: NewCustomer(
            name: "华为技术有限公司", contacts: [NewContact(name: "张伟", phones: ["13812345678"])]))
        let again = NewCustomer(name: "华为技术股份有限公司", tags: ["展会"])
        let found = try crm.duplicates().find(input: again)
        XCTAssertEqual(found.map { $0.id }, [first.id])
        XCTAssertEqual(found[0].reasons[0].text, "same name as \(first.code) 华为技术有限公司")
        XCTAssertThrowsError(try crm.customers().createChecked(input: again, onDuplicate: .block)) { e in
            guard case CrmError.Duplicate = e else { return XCTFail("\(e)") }
        }
        let linked = try crm.customers().createChecked(input: again, onDuplicate: .link)
        XCTAssertFalse(linked.created)
        XCTAssertTrue(linked.customer.tags.contains("展会"))
        let second = try crm.customers().createChecked(input: again, onDuplicate: .warn).customer
        let scan = try crm.duplicates().scan(filter: CustomerFilter())
        XCTAssertEqual(Set(scan.clusters.flatMap { $0.members }), Set([first.id, second.id]))

        let done = try crm.duplicates().merge(request: MergeRequest(survivor: first.id, merged: [second.id]))
        XCTAssertEqual(try crm.duplicates().mergedInto(customer: second.id), first.id)
        XCTAssertEqual(done.plan.merged, [second.id])
        try crm.duplicates().undoMerge(mergeId: done.mergeId)
        XCTAssertNil(try crm.duplicates().mergedInto(customer: second.id))
        try crm.duplicates().markNotDuplicate(a: first.id, b: second.id)
        XCTAssertTrue(try crm.duplicates().scan(filter: CustomerFilter()).clusters.isEmpty)

        let file = Data("客户名称,手机\n好公司,13800000001\n坏电话,12345\n".utf8)
        let refused = try crm.files().importCustomers(data: file, options: ImportOptions())
        XCTAssertFalse(refused.committed)
        XCTAssertEqual(refused.rejected.map { $0.row }, [3])
        XCTAssertEqual(refused.rejected[0].column, "手机")
        let progress = Progress()
        let good = try crm.files().importCustomersWithProgress(data: file, options: ImportOptions(mode: .keepGood), listener: progress)
        XCTAssertEqual(good.created.count, 1)
        XCTAssertEqual(progress.seen.last, [2, 2])
        XCTAssertTrue(try crm.files().importCustomers(data: file, options: ImportOptions(mode: .keepGood)).created.isEmpty)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("guanxi-\(UUID()).csv").path
        XCTAssertEqual(try crm.files().exportToPath(path: path, entity: .customers, filter: CustomerFilter(), format: .csv), 3)
        let back = try crm.files().importCustomers(data: try Data(contentsOf: URL(fileURLWithPath: path)), options: ImportOptions())
        XCTAssertEqual(back.skipped.count, 3)
        XCTAssertEqual(try importTemplate(format: .xlsx).prefix(2), Data("PK".utf8))
    }

    func testCatalogSyncPurchasesLevelsAndImports() throws {
        let rule = LevelRule(field: "spend_12m", aMin: Foundation.Decimal(500_000), bMin: Foundation.Decimal(100_000), currency: "CNY")
        let crm = try Crm.inMemoryWith(user: "alice", levelRule: rule)
        let products = crm.commerce().products()
        func product(_ code: String, _ name: String, _ price: Int) -> NewProduct {
            NewProduct(code: code, name: name, category: "软件", prices: [Price(currency: "CNY", amount: Foundation.Decimal(price))],
                       taxRate: Foundation.Decimal(13), externalId: "erp-\(code)")
        }
        let first = try products.sync(products: [product("SKU-1", "CRM 授权", 1999), product("SKU-2", "实施服务", 3000)])
        XCTAssertEqual(first.created, 2)
        XCTAssertEqual(first.outcomes, [.created, .created])
        let again = try products.sync(products: [product("SKU-1", "CRM 授权", 1999), product("SKU-2", "实施服务", 3000)])
        XCTAssertEqual(again.unchanged, 2)
        XCTAssertEqual(again.ids, first.ids)
        XCTAssertThrowsError(try products.sync(products: [product("", "无编码", 1), product("SKU-3", "x", -1)])) { error in
            guard case let CrmError.Validation(_, _, errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errors.map { $0.field }, ["products[0].code", "products[1].prices[0].amount"])
        }
        let page = try products.list(filter: ProductFilter(active: true), page: PageRequest(limit: 1))
        XCTAssertEqual(page.items.count, 1)
        XCTAssertNotNil(page.next)
        XCTAssertEqual(try products.count(filter: ProductFilter()), 2)
        let c = try crm.customers().create(input: NewCustomer(name: "甲公司"))
        let line = ProductLine(product: "SKU-2", productCode: "SKU-2", quantity: Foundation.Decimal(40), unitPrice: Foundation.Decimal(3000), discount: 0)
        let order = NewPurchase(customerId: c.id, at: Date().addingTimeInterval(-86_400), amount: nil, currency: "CNY", lines: [line],
                                channel: "电话", sourceSystem: "erp", externalId: "SO-1", status: .paid)
        let recorded = try crm.commerce().purchases().record(purchases: [order])
        XCTAssertEqual(recorded.created, 1)
        XCTAssertEqual(try crm.commerce().purchases().record(purchases: [order]).unchanged, 1)
        let bought = try crm.customers().get(id: c.id)
        XCTAssertEqual(bought.level, .b)
        XCTAssertEqual(bought.custom["spend_12m"], .decimal(value: Foundation.Decimal(120_000)))
        let p = try crm.commerce().purchases().get(id: recorded.ids[0])
        XCTAssertEqual(p.lines[0].product, "实施服务")
        let refunded = try crm.commerce().purchases().refund(id: p.id, version: p.version)
        XCTAssertEqual(refunded.status, .refunded)
        XCTAssertEqual(try crm.customers().get(id: c.id).level, .c)
        XCTAssertEqual(try crm.commerce().purchases().list(filter: PurchaseFilter(customerId: c.id), page: PageRequest()).items.count, 1)
        XCTAssertEqual(try crm.commerce().purchases().count(filter: PurchaseFilter(status: .paid)), 0)
        XCTAssertEqual(try crm.commerce().purchases().refreshLevels(), 0)
        let file = "客户编号,下单时间,金额,订单号\n\(c.code),2024-05-06 10:30,1999.00,SO-9\n\(c.code),2024-05-07,abc,SO-10\n"
        let report = try crm.commerce().importPurchases(data: Data(file.utf8), options: CommerceImportOptions(mode: .keepGood, sourceSystem: "erp"))
        XCTAssertEqual(report.sync.created, 1)
        XCTAssertEqual(report.rejected.map { $0.column }, ["金额"])
        let catalog = "product,series,sales_price\nGTX Basic,GTX,550\n"
        let mapped = CommerceImportOptions(columns: [ColumnMapping(header: "product", field: "code"), ColumnMapping(header: "series", field: "category"),
                                                     ColumnMapping(header: "sales_price", field: "price")])
        XCTAssertEqual(try crm.commerce().importProducts(data: Data(catalog.utf8), options: mapped).sync.created, 1)
    }

    func testAnalyticsSummariesRfmAndLifetimeValue() throws {
        let crm = try Crm.inMemory(user: "alice")
        let day = 86_400.0
        for i in 0..<30 {
            let c = try crm.customers().create(input: NewCustomer(name: "客户\(i)"))
            let orders = (0...(i % 4)).map { k in
                NewPurchase(customerId: c.id, at: Date().addingTimeInterval(-Double(3 * i + 11 * k + 1) * day), amount: Foundation.Decimal(100 + 10 * i),
                            currency: "CNY", lines: [], channel: nil, sourceSystem: nil, externalId: nil, status: .paid)
            }
            _ = try crm.commerce().purchases().record(purchases: orders)
        }
        let summaries = try crm.analytics().customerPurchases(filter: PurchaseFilter(), currency: "CNY")
        XCTAssertEqual(summaries.count, 30)
        let config = crm.analytics().defaultRfmConfig()
        let scores = try crm.analytics().rfm(filter: PurchaseFilter(), currency: "CNY", config: config)
        XCTAssertEqual(scores.count, 30)
        XCTAssertTrue(scores.allSatisfy { (1...5).contains($0.r) && !$0.segment.isEmpty })
        let ltv = try crm.analytics().lifetimeValue(filter: PurchaseFilter(), options: LifetimeValueOptions())
        XCTAssertEqual(ltv.customers.count, 30)
        XCTAssertTrue(ltv.customers.allSatisfy { (0.0...1.0).contains($0.pAlive) })
        XCTAssertNotNil(ltv.spend)
        var bad = config
        bad.bins = 1
        XCTAssertThrowsError(try crm.analytics().rfm(filter: PurchaseFilter(), currency: "CNY", config: bad))
    }
}
