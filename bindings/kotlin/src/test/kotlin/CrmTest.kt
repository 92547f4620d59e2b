// Kotlin tests of the guanxi bindings generated from the library under test: run by JUnit 5
// (GuanxiTest.kt, under Maven Surefire; see run-tests.sh), or alone through main().
import guanxi.*
import guanxi.core.*
import java.math.BigDecimal
import java.nio.file.Files
import java.time.Instant
import java.time.LocalDate
import java.util.UUID
import kotlin.system.exitProcess

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

inline fun <reified T : Throwable> assertThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

const val PASSWORD = "correct horse battery"

/** The handle's user, elevated by their password (set first when they have none). */
fun proven(crm: Crm, user: String): Crm {
    if (!crm.access().credentials(user).password) crm.access().setPassword(user, PASSWORD)
    return crm.access().elevate(ElevationProof.Password(PASSWORD))
}

fun huawei(crm: Crm): Customer = crm.customers().create(
    NewCustomer(
        name = " 华为技术有限公司 ",
        province = "广东",
        city = "深圳市",
        tags = listOf("VIP"),
        contacts = listOf(NewContact(name = "张伟", phones = listOf("+86 138-1234-5678"))),
    )
)

val tests: List<Pair<String, () -> Unit>> = listOf(
    "grouped handles page every list with a cursor" to {
        Crm.inMemory("alice").use { crm ->
            val made = listOf("甲", "乙", "丙").map {
                crm.customers().create(NewCustomer(name = it, industry = Industry.MANUFACTURING, size = SizeBand.LARGE))
            }
            val first = crm.customers().list(CustomerFilter(size = SizeBand.LARGE), PageRequest(limit = 2u))
            check(first.items.map { it.id } == made.take(2).map { it.id } && first.next != null) { "first page $first" }
            val rest = crm.customers().list(CustomerFilter(industry = Industry.MANUFACTURING), PageRequest(after = first.next, limit = 2u))
            check(rest.items.map { it.id } == listOf(made[2].id) && rest.next == null) { "last page $rest" }
            val bad = assertThrows<CrmException.Validation> { crm.customers().list(CustomerFilter(), PageRequest(after = "x", limit = 0u)) }
            check(bad.errors.map { it.field }.sorted() == listOf("after", "limit")) { "both paging errors ${bad.errors}" }
            val deal = crm.sales().opportunities().create(NewOpportunity(name = "ERP", customerId = made[0].id))
            check(crm.sales().opportunities().list(null, true, null, PageRequest()).items.single().id == deal.id) { "opportunity page" }
            crm.sales().leads().create(NewLead(name = "王芳", phone = "13900001111"))
            check(crm.sales().leads().list(null, true, PageRequest()).items.size == 1 && crm.sales().leads().count(null, true) == 1UL) { "lead page" }
            val t = crm.service().tickets().create(NewTicket(subject = "无法登录", kind = TicketKind.FAULT, priority = Priority.HIGH, customerId = made[1].id))
            val page = crm.service().tickets().list(TicketFilter(customerId = made[1].id, channel = Channel.WEB), PageRequest(limit = 10u))
            check(page.items.single().id == t.id && page.next == null) { "ticket page $page" }
        }
    },
    "create, get, update and list" to {
        Crm.inMemory("alice").use { crm ->
            val c = huawei(crm)
            check(c.name == "华为技术有限公司") { "name ${c.name}" }
            check(c.code.startsWith("C") && c.code.length == 12) { "code ${c.code}" }
            check(c.region?.province == "广东省") { "province ${c.region}" }
            check(c.status == LifecycleStatus.POTENTIAL && c.version == 1UL) { "status ${c.status}" }
            check(crm.customers().get(c.id) == c) { "get by id" }
            check(crm.customers().getByCode(c.code) == c) { "get by code" }
            val updated = crm.customers().update(c.id, c.version, CustomerPatch(status = LifecycleStatus.CUSTOMER))
            check(updated.version == 2UL && updated.status == LifecycleStatus.CUSTOMER) { "update $updated" }
            crm.customers().create(NewCustomer(name = "腾讯", province = "广东"))
            val vips = crm.customers().listAll(CustomerFilter(tags = listOf("VIP")))
            check(vips.map { it.code } == listOf(c.code)) { "list by tag $vips" }
            check(crm.customers().count(CustomerFilter(province = "广东")) == 2UL) { "count by province" }
            check(crm.contacts().list(c.id).single().phones == listOf("+8613812345678")) { "phone normalized" }
        }
    },
    "batches create all or nothing and name each bad row" to {
        Crm.inMemory("alice").use { crm ->
            val bad = assertThrows<CrmException.Validation> {
                crm.customers().createMany(listOf(NewCustomer(name = "甲"), NewCustomer(name = "")))
            }
            check(bad.errors.map { it.field } == listOf("customers[1].name")) { "errors by row ${bad.errors}" }
            val customers = crm.customers().createMany(listOf(NewCustomer(name = "甲"), NewCustomer(name = "乙")))
            check(customers.map { it.name } == listOf("甲", "乙")) { "customers $customers" }
            val deals = crm.sales().opportunities()
            val refused = assertThrows<CrmException.Validation> {
                deals.createMany(listOf(NewOpportunity(name = "ERP", customerId = customers[0].id), NewOpportunity(name = " ", currency = "yuan")))
            }
            check(refused.errors.map { it.field }.sorted() == listOf("opportunities[1].currency", "opportunities[1].name")) { "${refused.errors}" }
            check(deals.count(null, true, null) == 0UL) { "nothing written" }
            val badOwner = assertThrows<CrmException.Validation> { deals.createMany(listOf(NewOpportunity(name = "ERP"), NewOpportunity(name = "CRM", owner = " "))) }
            check(badOwner.field == "opportunities[1].owner") { "conversion errors by row ${badOwner.errors}" }
            val made = deals.createMany((0 until 50).map { NewOpportunity(name = "商机$it", customerId = customers[it % 2].id, amount = BigDecimal(1000 + it)) })
            check(made.map { it.code }.toSet().size == 50 && deals.count(null, true, null) == 50UL) { "50 deals, 50 codes" }
            val opened = Instant.parse("2024-01-02T00:00:00Z")
            val closed = Instant.parse("2024-03-01T00:00:00Z")
            val imported = deals.createMany(listOf(NewOpportunity(name = "旧单", amount = BigDecimal(5000), openedAt = opened,
                moves = listOf(PastMove(stage = "intent", at = opened.plusSeconds(86400)), PastMove(stage = "lost", at = closed, lostReason = "价格偏高")))))
            check(imported.single().stage == "lost" && imported.single().lostAt == closed) { "imported history ${imported.single()}" }
            check(deals.history(imported.single().id).map { it.change.to } == listOf("lead", "intent", "lost")) { "three stays" }
            val refusedMove = assertThrows<CrmException.Validation> {
                deals.createMany(listOf(NewOpportunity(name = "无原因", moves = listOf(PastMove(stage = "lost", at = closed)))))
            }
            check(refusedMove.field == "opportunities[0].moves[0].lost_reason") { "${refusedMove.errors}" }
            val tickets = crm.service().tickets()
            val noSubject = assertThrows<CrmException.Validation> {
                tickets.createMany(listOf(NewTicket(subject = "无法登录", kind = TicketKind.FAULT, priority = Priority.HIGH), NewTicket(subject = " ", kind = TicketKind.INQUIRY, priority = Priority.LOW)))
            }
            check(noSubject.field == "tickets[1].subject") { "ticket row ${noSubject.errors}" }
            val raised = tickets.createMany((0 until 20).map { NewTicket(subject = "问题$it", kind = TicketKind.INQUIRY, priority = Priority.LOW, customerId = customers[0].id) })
            check(raised.map { it.code }.toSet().size == 20 && raised.all { it.customerId == customers[0].id }) { "tickets $raised" }
        }
    },
    "validation failure is a typed exception naming the field" to {
        Crm.inMemory("alice").use { crm ->
            val e = assertThrows<CrmException.Validation> {
                crm.customers().create(NewCustomer(name = "", contacts = listOf(NewContact(name = "李娜", phones = listOf("12345")))))
            }
            check(e.field == "name") { "field ${e.field}" }
            check(e.errors.map { it.field } == listOf("name", "contacts[0].phones[0]")) { "errors ${e.errors}" }
            check(crm.customers().count(CustomerFilter()) == 0UL) { "nothing written" }
            val checked = assertThrows<CrmException.Validation> { crm.customers().check(NewCustomer(name = "", province = "火星")) }
            check(checked.errors.map { it.field }.sorted() == listOf("name", "region.province")) { "check ${checked.errors}" }
            crm.customers().check(NewCustomer(name = "甲", province = "广东"))
            check(crm.customers().count(CustomerFilter()) == 0UL) { "check writes nothing" }
        }
    },
    "a stale version is a conflict and changes nothing" to {
        Crm.inMemory("alice").use { crm ->
            val c = huawei(crm)
            crm.customers().update(c.id, 1UL, CustomerPatch(name = "新名字"))
            val e = assertThrows<CrmException.Conflict> { crm.customers().update(c.id, 1UL, CustomerPatch(name = "过期")) }
            check(e.expected == 1UL && e.actual == 2UL) { "conflict $e" }
            check(crm.customers().get(c.id).name == "新名字") { "unchanged" }
            assertThrows<CrmException.NotFound> { crm.customers().get(UUID.randomUUID()) }
        }
    },
    "native types: UUID, Instant, BigDecimal, LocalDate" to {
        Crm.inMemory("alice").use { crm ->
            crm.customFields().create(CustomField(entity = EntityKind.CUSTOMER, key = "budget", label = "预算", fieldType = FieldType.DECIMAL))
            val before = Instant.now().minusSeconds(5)
            val c = crm.customers().create(
                NewCustomer(name = "甲", custom = mapOf("budget" to CustomValue.Decimal(BigDecimal("1200000.50"))))
            )
            check(c.id.version() == 7) { "uuid v7" }
            check(c.createdAt.isAfter(before)) { "instant ${c.createdAt}" }
            val budget = c.custom["budget"] as CustomValue.Decimal
            check(budget.value.compareTo(BigDecimal("1200000.5")) == 0) { "decimal ${budget.value}" }
            val i = crm.interactions().create(
                c.id,
                NewInteraction(kind = InteractionKind.VISIT, content = "拜访", nextContactOn = LocalDate.of(2031, 1, 2))
            )
            check(i.nextContactOn == LocalDate.of(2031, 1, 2) && i.author == "alice") { "interaction $i" }
            check(crm.interactions().list(c.id) == listOf(i)) { "interactions" }
        }
    },
    "events reach a Kotlin listener after commit" to {
        Crm.inMemory("alice").use { crm ->
            val seen = mutableListOf<String>()
            val details = mutableListOf<DomainEvent>()
            val id = crm.subscribe(object : EventListener {
                override fun onEvent(event: Event) {
                    seen.add(event.name)
                    details.add(event.detail)
                }
            })
            val c = huawei(crm)
            check(seen == listOf("customer_created", "tag_added", "contact_added")) { "events $seen" }
            // Typed details, not JSON text.
            check(details[0] == DomainEvent.CustomerCreated(c.id, c.code)) { "detail ${details[0]}" }
            check(details[1] is DomainEvent.TagAdded && (details[1] as DomainEvent.TagAdded).customer == c.id) { "tag ${details[1]}" }
            check(crm.unsubscribe(id)) { "unsubscribe" }
            crm.tags().add(c.id, "重点")
            check(seen.size == 3) { "no events after unsubscribe" }
        }
    },
    "the same calls on PostgreSQL, opened with a connection string" to {
        val server = System.getenv("GUANXI_TEST_POSTGRES")
        check(server != null || System.getenv("CI") != "true") { "CI=true but GUANXI_TEST_POSTGRES is not set" }
        if (server != null) {
            Crm.open(server, "alice").use { crm ->
                // The server may hold earlier runs' rows: this run's own tag tells its customer apart.
                val tag = "kotlin-" + UUID.randomUUID().toString().take(8)
                val c = crm.customers().create(NewCustomer(name = "华为技术有限公司 $tag", tags = listOf(tag)))
                check(crm.customers().get(c.id) == c) { "get by id" }
                check(crm.customers().count(CustomerFilter(tags = listOf(tag))) == 1UL) { "count by tag" }
                crm.customers().update(c.id, c.version, CustomerPatch(status = LifecycleStatus.CUSTOMER))
                assertThrows<CrmException.Conflict> { crm.customers().update(c.id, c.version, CustomerPatch(name = "旧版本")) }
                check(crm.audit().verify().intact) { "audit chain" }
            }
        }
    },
    "on PostgreSQL: contacts sealed under a key, backed up into a file, restored into another schema" to {
        val server = System.getenv("GUANXI_TEST_POSTGRES")
        if (server != null) {
            // Schemas of this run's own on the shared server: `guanxi_schema` names them.
            val run = UUID.randomUUID().toString().take(8)
            val source = "$server guanxi_schema=kotlin_${run}_a"
            val target = "$server guanxi_schema=kotlin_${run}_b"
            val key = generateFieldKey()
            val dir = Files.createTempDirectory("guanxi")
            Crm.openEncrypted(source, "admin", key).use { crm ->
                crm.customers().create(NewCustomer(name = "甲", contacts = listOf(NewContact(name = "张伟", phones = listOf("138 1234 5678")))))
                check(crm.contacts().findByPhone("13812345678").single().name == "张伟") { "blind-index lookup" }
                check(crm.files().backup(dir.resolve("backup.db").toString()).intact) { "backup" }
            }
            val wrong = assertThrows<CrmException.Encryption> { Crm.openEncrypted(source, "admin", generateFieldKey()) }
            check(wrong.kind == "wrong_key") { "kind ${wrong.kind}" }
            check(!String(Files.readAllBytes(dir.resolve("backup.db")), Charsets.ISO_8859_1).contains("13812345678")) { "phone in clear in the backup" }
            val restored = restoreBackup(dir.resolve("backup.db").toString(), target, key)
            check(restored.intact && restored.entries == 3UL) { "restored $restored" }
            Crm.openEncrypted(target, "admin", key).use { crm ->
                check(crm.contacts().findByPhone("13812345678").single().phones == listOf("+8613812345678")) { "restored lookup" }
            }
        }
    },
    "the audit chain verifies, and backups restore" to {
        val dir = Files.createTempDirectory("guanxi")
        Crm.open(dir.resolve("crm.db").toString(), "alice").use { crm ->
            huawei(crm)
            val check = crm.audit().verify()
            check(check.intact && check.entries == 2UL && check.head?.length == 64) { "audit $check" }
            val copy = crm.files().backup(dir.resolve("backup.db").toString())
            check(copy.intact && copy.entries == 3UL) { "backup $copy" }
            assertThrows<CrmException.InvalidState> { crm.files().backup(dir.resolve("backup.db").toString()) }
        }
        val backupBytes = Files.readAllBytes(dir.resolve("backup.db"))
        val restored = restoreBackup(dir.resolve("backup.db").toString(), dir.resolve("restored.db").toString())
        check(restored.intact) { "restored $restored" }
        // Reading and restoring a backup leaves its bytes as they were and no file beside it.
        check(Files.readAllBytes(dir.resolve("backup.db")).contentEquals(backupBytes)) { "backup bytes changed" }
        val beside = Files.list(dir).map { it.fileName.toString() }.filter { it.startsWith("backup") || it.startsWith("restored") }.sorted().toList()
        check(beside == listOf("backup.db", "restored.db")) { "files $beside" }
        Crm.open(dir.resolve("restored.db").toString(), "bob").use { again ->
            check(again.customers().count(CustomerFilter()) == 1UL) { "restored rows" }
            check(again.audit().verify().intact) { "restored chain" }
        }
    },
    "contacts, tags, custom fields and the timeline" to {
        Crm.inMemory("alice").use { crm ->
            val c = huawei(crm)
            val li = crm.contacts().create(c.id, NewContact(name = "李娜", phones = listOf("139 0000 1111"), role = DecisionRole.EVALUATOR))
            val updated = crm.contacts().update(li.id, li.version, ContactPatch(title = "采购经理", clearRole = true))
            check(updated.title == "采购经理" && updated.role == null && updated.version == 2UL) { "update $updated" }
            assertThrows<CrmException.Conflict> { crm.contacts().update(li.id, li.version, ContactPatch(title = "过期")) }
            check(crm.contacts().setPrimary(li.id).primary) { "set primary" }
            crm.contacts().delete(li.id, crm.contacts().list(c.id).first { it.id == li.id }.version)
            check(crm.contacts().list(c.id).map { it.name to it.primary } == listOf("张伟" to true)) { "after remove" }
            crm.tags().create("重点", "等级")
            check(crm.tags().list().map { it.name to it.group } == listOf("VIP" to null, "重点" to "等级")) { "tags ${crm.tags().list()}" }
            crm.customFields().create(CustomField(entity = EntityKind.CONTACT, key = "wechat", label = "微信", fieldType = FieldType.TEXT))
            check(crm.customFields().list(EntityKind.CONTACT).map { it.key } == listOf("wechat")) { "custom fields" }
            crm.interactions().create(c.id, NewInteraction(kind = InteractionKind.CALL, content = "电话"))
            val kinds = crm.customers().timeline(c.id).map { if (it.interaction != null) "interaction" else it.change!!.entity.name.lowercase() }
            check(kinds.first() == "customer" && kinds.last() == "interaction") { "timeline $kinds" }
        }
    },
    "password hashing and RFC 6238 TOTP" to {
        val phc = hashPassword("correct horse battery staple")
        check(phc.startsWith("\$argon2id\$")) { "phc $phc" }
        check(verifyPassword("correct horse battery staple", phc) && !verifyPassword("wrong", phc)) { "verify" }
        val e = assertThrows<CrmException.Validation> { verifyPassword("x", "not a hash") }
        check(e.field == "password_hash") { "field ${e.field}" }
        val secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // RFC 6238's "12345678901234567890"
        check(totpCode(secret, Instant.ofEpochSecond(59), 8u, TotpAlgorithm.SHA1) == "94287082") { "rfc vector" }
        check(verifyTotp(secret, "94287082", Instant.ofEpochSecond(89), 8u, TotpAlgorithm.SHA1, 1u)) { "drift" }
        check(!verifyTotp(secret, "94287082", Instant.ofEpochSecond(89), 8u, TotpAlgorithm.SHA1, 0u)) { "no drift" }
    },
    "roles, scopes, masking, elevation and explain" to {
        Crm.inMemory("root").use { crm ->
            val root = proven(crm, "root")
            root.access().setDepartment(Department(id = "east", name = "华东", parent = null))
            root.access().setDepartment(Department(id = "sh", name = "上海", parent = "east"))
            root.access().setUser(User("root", "管理员", null, listOf("administrator"), listOf(), true))
            root.access().setUser(User("li", "李经理", "east", listOf("sales_manager"), listOf(), true))
            root.access().setUser(User("wang", "王伟", "sh", listOf("sales_rep"), listOf(), true))
            root.access().setUser(User("ma", "马", null, listOf("marketing"), listOf(), true))
            val wang = crm.asUser("wang")
            val mine = wang.customers().create(NewCustomer(name = "王的客户", contacts = listOf(NewContact(name = "张伟", phones = listOf("13812345678")))))
            val other = root.customers().create(NewCustomer(name = "总部客户"))
            check(wang.customers().listAll(CustomerFilter()).map { it.code } == listOf(mine.code)) { "own scope" }
            check(crm.asUser("li").customers().count(CustomerFilter()) == 1UL) { "department scope" }
            val denied = assertThrows<CrmException.PermissionDenied> { wang.customers().get(other.id) }
            check(denied.action == "read") { "action ${denied.action}" }
            val why = wang.access().explain(Action.READ, EntityKind.CUSTOMER, other.id, null)
            check(!why.allowed && why.reasons[0].contains("owned by root")) { "explain $why" }
            val ma = crm.asUser("ma")
            check(ma.contacts().list(mine.id).single().phones == listOf("138****5678")) { "masked" }
            val li = crm.asUser("li")
            val needs = assertThrows<CrmException.ElevationRequired> { li.customers().export(CustomerFilter()) }
            check(needs.action == "export") { "action ${needs.action}" }
            check(proven(li, "li").customers().export(CustomerFilter()).size == 1) { "export" }
            val asserted = li.elevated(Instant.now().plusSeconds(600))
            assertThrows<CrmException.ElevationRequired> { asserted.customers().export(CustomerFilter()) }
            root.access().setRole(Role("south", "华南只读", listOf(Grant(EntityKind.CUSTOMER, listOf(Action.READ), Scope.REGION)), listOf(FieldRule(EntityKind.CONTACT, "emails", Visibility.HIDDEN))))
            check(root.access().model().roles.map { it.id } == listOf("south")) { "custom role" }
            assertThrows<CrmException.ElevationRequired> { crm.asUser("root").access().removeRole("south") }
            root.access().removeRole("south")
            check(root.audit().verify().intact) { "audit" }
        }
    },
    "proven elevation, withheld duplicates and explain on any record" to {
        val verifier = object : ElevationVerifier {
            override fun verify(user: String, token: String): Boolean = token == "idp-ok:$user"
        }
        Crm.inMemoryWith("root", false, verifier).use { crm ->
            val root = proven(crm, "root")
            root.access().setUser(User("root", "管理员", null, listOf("administrator"), listOf(), true))
            root.access().setUser(User("wang", "王伟", null, listOf("sales_rep"), listOf(), true))
            root.access().setUser(User("zhao", "赵", null, listOf("sales_rep"), listOf(), true))
            val refused = assertThrows<CrmException.PermissionDenied> { crm.access().elevate(ElevationProof.Password("wrong password")) }
            check(refused.action == "elevate") { "refused $refused" }
            check(crm.access().elevate(ElevationProof.Host("idp-ok:root")).audit().verify().intact) { "host verifier" }
            assertThrows<CrmException.PermissionDenied> { crm.access().elevate(ElevationProof.Host("idp-ok:wang")) }
            val forged = crm.elevated(Instant.now().plusSeconds(86_400))
            assertThrows<CrmException.ElevationRequired> { forged.access().removeRole("x") }
            val wang = crm.asUser("wang")
            val zhao = crm.asUser("zhao")
            val theirs = wang.customers().create(NewCustomer(name = "华为技术有限公司", contacts = listOf(NewContact(name = "张伟", phones = listOf("13812345678")))))
            val found = zhao.duplicates().find(NewCustomer(name = "某某公司", contacts = listOf(NewContact(name = "王", phones = listOf("13812345678")))))
            check(found.size == 1 && found[0].id == null && found[0].code == "" && found[0].name == "") { "withheld $found" }
            check(found[0].reasons[0].text == "same phone as a customer outside your access scope") { "reason ${found[0].reasons}" }
            check(!found.toString().contains(theirs.code)) { "no code" }
            val ticket = wang.service().tickets().create(NewTicket(subject = "发票开错了", kind = TicketKind.INQUIRY, priority = Priority.MEDIUM, customerId = theirs.id))
            check(wang.service().tickets().get(ticket.id).code == ticket.code) { "a rep reads the ticket they open" }
            check(wang.access().explain(Action.READ, EntityKind.TICKET, ticket.id, null).allowed) { "explain agrees" }
            check(!zhao.access().explain(Action.READ, EntityKind.TICKET, ticket.id, null).allowed) { "and for others" }
        }
    },
    "field encryption, blind index and key rotation" to {
        val dir = Files.createTempDirectory("guanxi")
        val path = dir.resolve("crm.db").toString()
        val key = generateFieldKey()
        val newKey = generateFieldKey()
        Crm.openEncrypted(path, "admin", key).use { crm ->
            crm.customers().create(NewCustomer(name = "甲", contacts = listOf(NewContact(name = "张伟", phones = listOf("138 1234 5678"), idNumber = "11010519491231002x"))))
            check(crm.contacts().findByPhone("13812345678").single().name == "张伟") { "lookup" }
            check(crm.contacts().findByIdNumber("11010519491231002X").single().idNumber == "11010519491231002X") { "id lookup" }
            check(proven(crm, "admin").access().rotateFieldKey(newKey) == 1UL) { "rotate" }
        }
        val wrong = assertThrows<CrmException.Encryption> { Crm.openEncrypted(path, "admin", key) }
        check(wrong.kind == "wrong_key") { "kind ${wrong.kind}" }
        Crm.openEncrypted(path, "admin", newKey).use { crm ->
            check(crm.contacts().findByPhone("13812345678").single().phones == listOf("+8613812345678")) { "after rotation" }
            check(crm.contacts().findByIdNumber("11010519491231002X").size == 1) { "id lookup after rotation" }
        }
    },
    "sales: pipeline, opportunity moves and history, refused moves change nothing" to {
        Crm.inMemory("alice").use { crm ->
            val standard = crm.sales().pipeline("standard")
            check(standard.stages.map { it.key } == listOf("lead", "intent", "proposal", "negotiation", "won", "lost")) { "stages" }
            val renewal = standard.copy(key = "renewal", name = "续约", stages = standard.stages.filter { it.key != "proposal" })
            check(crm.sales().setPipeline(renewal).stages.size == 5) { "renewal" }
            val t0 = Instant.parse("2024-01-01T00:00:00Z")
            var o = crm.sales().opportunities().create(
                NewOpportunity(
                    name = "ERP 升级",
                    lines = listOf(ProductLine(product = "GTX Pro", quantity = BigDecimal("3"), unitPrice = BigDecimal("4999.99"), discount = BigDecimal("10"))),
                    openedAt = t0,
                )
            )
            check(o.amount.compareTo(BigDecimal("14989.97")) == 0) { "amount ${o.amount}" }
            check(o.code.startsWith("O") && o.stage == "lead" && o.probability.compareTo(BigDecimal.TEN) == 0) { "new $o" }
            o = crm.sales().opportunities().moveTo(o.id, o.version, "intent", null, t0.plusSeconds(86400))
            o = crm.sales().opportunities().moveTo(o.id, o.version, "proposal", null, t0.plusSeconds(3 * 86400))
            val refused = assertThrows<CrmException.Validation> { crm.sales().opportunities().moveTo(o.id, o.version, "negotiation", null, null) }
            check(refused.field == "expected_close") { "field ${refused.field}" }
            val unknown = assertThrows<CrmException.Validation> { crm.sales().opportunities().moveTo(o.id, o.version, "signed", null, null) }
            check(unknown.field == "stage" && unknown.errors[0].allowed == listOf("lead", "intent", "proposal", "negotiation", "won", "lost")) {
                "allowed stages ${unknown.errors}"
            }
            check(crm.sales().opportunities().get(o.id) == o) { "unchanged" }
            o = crm.sales().opportunities().update(o.id, o.version, OpportunityPatch(expectedClose = LocalDate.parse("2024-03-31"), probability = BigDecimal("65")))
            check(o.probabilitySource == ProbabilitySource.MANUAL) { "source" }
            o = crm.sales().opportunities().moveTo(o.id, o.version, "won", null, t0.plusSeconds(10 * 86400))
            check(o.wonAt == t0.plusSeconds(10 * 86400) && o.probability.compareTo(BigDecimal("100")) == 0) { "won $o" }
            assertThrows<CrmException.InvalidState> { crm.sales().opportunities().moveTo(o.id, o.version, "intent", null, null) }
            val history = crm.sales().opportunities().history(o.id)
            check(history.map { it.change.from to it.change.to } == listOf(null to "lead", "lead" to "intent", "intent" to "proposal", "proposal" to "won")) { "history" }
            assertThrows<CrmException.Validation> { crm.sales().opportunities().create(NewOpportunity(name = "坏币种", currency = "yuan")) }
            check(crm.sales().opportunities().count(null, null, null) == 1UL) { "count" }
        }
    },
    "sales report, leads, tasks and agenda" to {
        Crm.inMemory("alice").use { crm ->
            val t0 = Instant.parse("2024-01-01T00:00:00Z")
            for (i in 0 until 30) {
                var o = crm.sales().opportunities().create(NewOpportunity(name = "商机$i", amount = BigDecimal(100 + i), owner = if (i % 2 == 0) "alice" else "bob", openedAt = t0.plusSeconds(i * 86400L)))
                o = crm.sales().opportunities().moveTo(o.id, o.version, "intent", null, t0.plusSeconds(i * 86400L + 3600))
                when (i % 3) {
                    0 -> crm.sales().opportunities().moveTo(o.id, o.version, "won", null, t0.plusSeconds((i + 5) * 86400L))
                    1 -> crm.sales().opportunities().moveTo(o.id, o.version, "lost", "价格偏高", t0.plusSeconds((i + 2) * 86400L))
                    else -> {}
                }
            }
            val r = crm.sales().report(SalesQuery())
            check(r.won.count == 10UL && r.lost.count == 10UL && r.openCount == 10UL) { "counts" }
            check(r.winRate!!.compareTo(BigDecimal("0.5")) == 0) { "win rate ${r.winRate}" }
            check(r.won.medianDays!!.compareTo(BigDecimal("5")) == 0) { "median ${r.won.medianDays}" }
            val intent = r.funnel.single { it.stage == "intent" }
            check(intent.reached == 30UL && intent.lossReasons == listOf(LossReason("价格偏高", 10UL))) { "funnel $intent" }
            val wonAmount = (0 until 30 step 3).sumOf { 100 + it }
            check(r.won.amount.compareTo(BigDecimal(wonAmount)) == 0) { "won amount" }
            check(r.wonByOwner.map { it.key }.toSet() == setOf("alice", "bob")) { "owners" }
            crm.sales().setLeadRules(LeadRules(
                grading = listOf(GradeRule(LeadGrade.A, listOf(LeadCondition.SourceIn(listOf("行业峰会"))))),
                assignment = listOf(AssignmentRule.RoundRobin(listOf("alice", "bob"))),
            ))
            check(crm.sales().leadRules().grading.single().whenAll == listOf(LeadCondition.SourceIn(listOf("行业峰会")))) { "rules read back" }
            val bad = assertThrows<CrmException.Validation> {
                crm.sales().setLeadRules(LeadRules(
                    grading = listOf(GradeRule(LeadGrade.B, listOf(LeadCondition.IndustryIn(listOf(Industry.AGRICULTURE))))),
                    assignment = listOf(AssignmentRule.RoundRobin(listOf(" ")), AssignmentRule.LeastLoaded(listOf("ok", ""))),
                ))
            }
            check(bad.errors.map { it.field } == listOf("assignment[0]", "assignment[1]")) { "every bad rule ${bad.errors}" }
            val lead = crm.sales().leads().create(NewLead(name = "王磊", company = "星河科技", phone = "138 0013 8000", source = "行业峰会"))
            check(lead.grade == LeadGrade.A && lead.owner == "alice" && lead.phone == "+8613800138000") { "lead $lead" }
            val conv = crm.sales().leads().convert(lead.id, NewOpportunity(name = "扩容", amount = BigDecimal("50000")))
            check(!conv.linkedExisting && crm.sales().opportunities().get(conv.opportunityId!!).customerId == conv.customerId) { "conversion" }
            val again = crm.sales().leads().convert(crm.sales().leads().create(NewLead(name = "王磊", phone = "13800138000")).id, null)
            check(again.linkedExisting && again.customerId == conv.customerId) { "linked" }
            val now = Instant.now()
            val task = crm.sales().tasks().create("发报价单", now.minusSeconds(3600), null, null)
            check(crm.sales().agenda(null, now).overdue.any { it is AgendaItem.Task && it.task.title == "发报价单" }) { "overdue" }
            check(crm.sales().tasks().complete(task.id, task.version).doneAt != null) { "done" }
            check(crm.sales().tasks().listAll(null, true).isEmpty()) { "no open tasks" }
            crm.sales().tasks().create("回访", now.plusSeconds(86400), null, null)
            check(crm.sales().tasks().get(task.id).doneAt != null) { "get" }
            check(crm.sales().tasks().count(null, null) == 2uL && crm.sales().tasks().count(null, true) == 1uL) { "count" }
            val firstTasks = crm.sales().tasks().list(null, null, PageRequest(limit = 1u))
            check(firstTasks.items.single().id == task.id && firstTasks.next != null) { "task page" }
            val restTasks = crm.sales().tasks().list(null, null, PageRequest(after = firstTasks.next, limit = 1u))
            check(restTasks.items.single().title == "回访" && restTasks.next == null) { "last task page" }
        }
    },
    "tickets move through the status rule with SLA in business time" to {
        Crm.inMemory("alice").use { crm ->
            val settings = crm.service().settings()
            check(settings.atRiskPercent == 20.toUByte() && settings.calendar.weekly[0][0].startSeconds == 9u * 3600u) { "default settings" }
            crm.service().setSettings(settings.copy(groups = listOf(SkillGroup("l1", "一线", listOf(Agent("amy")))), defaultGroup = "l1"))
            val bad = assertThrows<CrmException.Validation> {
                crm.service().setSettings(settings.copy(calendar = settings.calendar.copy(weekly = listOf()), groups = listOf(SkillGroup("l1", "一线", listOf(Agent(" "))))))
            }
            check(bad.errors.map { it.field } == listOf("calendar.weekly", "groups[0].agents[0].user")) { "every bad part ${bad.errors}" }
            val created = Instant.now().minusSeconds(3 * 86400)
            var t = crm.service().tickets().create(NewTicket(subject = "无法登录", kind = TicketKind.FAULT, priority = Priority.URGENT, description = "我要投诉", createdAt = created))
            check(t.status == TicketStatus.ASSIGNED && t.assignee == "amy" && t.riskFlags == listOf("投诉")) { "created $t" }
            assertThrows<CrmException.InvalidState> { crm.service().tickets().moveTo(t.id, t.version, TicketStatus.CLOSED, null, null) }
            check(crm.service().tickets().get(t.id) == t) { "refused move changes nothing" }
            t = crm.service().tickets().moveTo(t.id, t.version, TicketStatus.IN_PROGRESS, null, created.plusSeconds(600))
            t = crm.service().tickets().reply(t.id, t.version, "请提供截图", true, created.plusSeconds(1200))
            check(t.firstResponseAt == created.plusSeconds(1200)) { "first response" }
            assertThrows<CrmException.Validation> { crm.service().tickets().moveTo(t.id, t.version, TicketStatus.RESOLVED, null, null) }
            t = crm.service().tickets().moveTo(t.id, t.version, TicketStatus.RESOLVED, "已重置", null)
            t = crm.service().tickets().rate(t.id, t.version, 5u, null)
            check(t.satisfaction == 5.toUByte()) { "rated" }
            val sla = crm.service().slaOverview(TicketFilter(), Instant.now()).single()
            check(sla.firstResponse.state == SlaState.MET || sla.firstResponse.state == SlaState.BREACHED) { "first response ${sla.firstResponse}" }
            check(sla.resolution.usedSecs >= 0 && sla.policy == "urgent") { "sla $sla" }
            check(crm.service().tickets().entries(t.id).map { it.change::class.simpleName } == listOf("Created", "Assigned", "Status", "Reply", "Status", "Rated")) { "entries" }
            val r = crm.service().report(TicketFilter(), Period.WEEK, null)
            check(r.tickets == 1uL && r.csatMean == BigDecimal(5) && r.flagged == 1uL) { "report $r" }
            check(r.byStatus.single().status == TicketStatus.RESOLVED) { "by status" }
        }
    },
    "knowledge base searches Chinese and English and suggests articles" to {
        Crm.inMemory("alice").use { crm ->
            val refund = crm.kb().create(NewArticle(title = "如何申请退款", body = "在订单详情页点击申请退款，三个工作日到账。", tags = listOf("退款")))
            crm.kb().create(NewArticle(title = "Reset your password", body = "Use the forgot-password link on the login page."))
            check(crm.kb().search(ArticleQuery(text = "退款")).map { it.article.id } == listOf(refund.id)) { "chinese" }
            check(crm.kb().search(ArticleQuery(text = "PASSWORD login")).single().article.title == "Reset your password") { "english" }
            val t = crm.service().tickets().create(NewTicket(subject = "我想退款", kind = TicketKind.COMPLAINT, priority = Priority.MEDIUM))
            check(crm.kb().suggest(t.id, 3u).first().article.id == refund.id) { "suggest" }
            assertThrows<CrmException.Conflict> { crm.kb().update(refund.id, 9uL, NewArticle(title = "x", body = "y")) }
        }
    },
    "tickets are transferred, escalated and re-prioritised, all recorded" to {
        Crm.inMemory("alice").use { crm ->
            val groups = listOf(
                SkillGroup("l1", "一线", listOf(Agent("amy"), Agent("bob")), AssignStrategy.ROUND_ROBIN, "l2"),
                SkillGroup("l2", "二线", listOf(Agent("carl")), AssignStrategy.LEAST_LOADED),
            )
            crm.service().setSettings(crm.service().settings().copy(groups = groups, defaultGroup = "l1"))
            val first = crm.service().tickets().create(NewTicket(subject = "发票抬头错误", kind = TicketKind.INQUIRY, priority = Priority.LOW))
            var t = crm.service().tickets().create(NewTicket(subject = "网络中断", kind = TicketKind.FAULT, priority = Priority.MEDIUM))
            check(first.assignee == "amy" && t.assignee == "bob") { "round robin ${first.assignee} ${t.assignee}" }
            t = crm.service().tickets().assign(t.id, t.version, "amy", null, "换人")
            check(t.assignee == "amy") { "transfer" }
            assertThrows<CrmException.Validation> { crm.service().tickets().assign(t.id, t.version, "amy", "l2", null) }
            t = crm.service().tickets().escalate(t.id, t.version, "客户投诉升级")
            check(t.group == "l2" && t.assignee == "carl" && t.escalationLevel == 1u) { "escalated $t" }
            assertThrows<CrmException.InvalidState> { crm.service().tickets().escalate(t.id, t.version, null) }
            t = crm.service().tickets().setPriority(t.id, t.version, Priority.URGENT)
            check(t.priority == Priority.URGENT && t.sla?.policy == "urgent") { "priority $t" }
            val sla = crm.service().tickets().sla(t.id, Instant.now())
            check(sla != null && sla.policy == "urgent" && sla.ticketId == t.id) { "sla $sla" }
            check(crm.service().tickets().getByCode(t.code) == t) { "by code" }
            check(crm.service().tickets().listAll(TicketFilter(assignee = "carl")).map { it.id } == listOf(t.id)) { "filter" }
            val entries = crm.service().tickets().entries(t.id)
            check(entries[0].change == TicketChange.Created) { "created ${entries[0]}" }
            val reasons = entries.mapNotNull { (it.change as? TicketChange.Assigned)?.reason }
            check(reasons.size == 3 && reasons[1] == AssignReason.TRANSFER && reasons[2] == AssignReason.ESCALATION) { "history $reasons" }
            val escalated = entries.last { it.change is TicketChange.Assigned }.change as TicketChange.Assigned
            check(escalated.toGroup == "l2" && escalated.note == "客户投诉升级") { "escalation $escalated" }
        }
    },
    "knowledge base search narrows by category, tag and drafts" to {
        Crm.inMemory("alice").use { crm ->
            val a = crm.kb().create(NewArticle(title = "退款到账时间", body = "退款三个工作日到账。", category = "billing", tags = listOf("退款")))
            val draft = crm.kb().create(NewArticle(title = "退款新政策", body = "草稿：退款规则调整。", category = "billing", published = false))
            crm.kb().create(NewArticle(title = "Refund for devices", body = "退款 for hardware returns.", category = "devices"))
            check(crm.kb().get(a.id) == a) { "get" }
            check(crm.kb().search(ArticleQuery(text = "退款")).size == 2) { "drafts hidden" }
            check(crm.kb().search(ArticleQuery(text = "退款", includeUnpublished = true)).any { it.article.id == draft.id }) { "drafts" }
            check(crm.kb().search(ArticleQuery(text = "退款", category = "billing")).map { it.article.id } == listOf(a.id)) { "category" }
            check(crm.kb().search(ArticleQuery(text = "退款", tag = "退款")).map { it.article.id } == listOf(a.id)) { "tag" }
            check(crm.kb().search(ArticleQuery(text = "refund 到账", matchAny = true)).size == 2) { "any" }
            check(crm.kb().search(ArticleQuery(text = "退款", limit = 1u)).size == 1) { "limit" }
        }
    },
    "duplicates: check on create, policies, scan and not-duplicate marks" to {
        Crm.inMemory("alice").use { crm ->
            val first = crm.customers().create(
                NewCustomer(name = "华为技术有限公司", contacts = listOf(NewContact(name = "张伟", phones = listOf("13812345678"))))
            )
            val again = NewCustomer(name = "华为技术股份有限公司", tags = listOf("展会"))
            val found = crm.duplicates().find(again)
            check(found.map { it.id } == listOf(first.id)) { "found $found" }
            check(found[0].reasons[0].text == "same name as ${first.code} 华为技术有限公司") { "reason ${found[0].reasons}" }
            assertThrows<CrmException.Duplicate> { crm.customers().createChecked(again, OnDuplicate.BLOCK) }
            check(crm.customers().count(CustomerFilter()) == 1UL) { "blocked: nothing written" }
            val linked = crm.customers().createChecked(again, OnDuplicate.LINK)
            check(!linked.created && linked.customer.id == first.id && "展会" in linked.customer.tags) { "linked $linked" }
            val warned = crm.customers().createChecked(again, OnDuplicate.WARN)
            check(warned.created && warned.duplicates[0].id == first.id) { "warned $warned" }
            val scan = crm.duplicates().scan(CustomerFilter())
            check(scan.profiles == 2UL && scan.clusters.single().members.toSet() == setOf(first.id, warned.customer.id)) { "scan $scan" }
            crm.duplicates().markNotDuplicate(first.id, warned.customer.id)
            check(crm.duplicates().scan(CustomerFilter()).clusters.isEmpty()) { "marked pair proposed again" }
            check(crm.duplicates().of(first.id).isEmpty()) { "duplicatesOf after the mark" }
        }
    },
    "behaviour events recorded idempotently, the IELTS segment, explain and syntax errors" to {
        Crm.inMemory("alice").use { crm ->
            val day = 86_400L
            val now = Instant.now()
            val wang = crm.customers().create(NewCustomer(name = "王芳", kind = CustomerKind.INDIVIDUAL))
            val li = crm.customers().create(NewCustomer(name = "李娜", kind = CustomerKind.INDIVIDUAL))
            fun view(who: Customer, daysAgo: Long, external: String? = null) = BehaviourEvent(
                customerId = who.id, name = "page_view", at = now.minusSeconds(daysAgo * day),
                properties = mapOf("url" to CustomValue.Text("/courses/ielts")), externalId = external)
            val bad = assertThrows<CrmException.Validation> {
                crm.marketing().events().record(listOf(view(wang, 1), view(wang, 2).copy(name = " ")))
            }
            check(bad.errors.map { it.field } == listOf("events[1].name")) { "errors ${bad.errors}" }
            val first = crm.marketing().events().record(listOf(view(wang, 1, "w1"), view(wang, 2), view(wang, 20), view(li, 1), view(li, 2)))
            val again = crm.marketing().events().record(listOf(view(wang, 1, "w1")))
            check(first.recorded.size == 5 && again.recorded.isEmpty() && again.duplicates == listOf("w1")) { "recorded $first $again" }
            val page = crm.marketing().events().list(wang.id, null, null, PageRequest(limit = 2u))
            check(page.items.size == 2 && page.next != null && page.items[0].at < page.items[1].at) { "page $page" }
            check(page.items[0].contactId == null) { "no contact given" }
            val stranger = assertThrows<CrmException.Validation> {
                crm.marketing().events().record(listOf(view(wang, 1).copy(contactId = UUID.randomUUID())))
            }
            check(stranger.errors.single().field == "events[0].contact_id") { "contact ${stranger.errors}" }
            val rule = "count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3 AND NOT tag:雅思学员"
            check(crm.marketing().segments().members(rule).map { it.name } == listOf("王芳")) { "members" }
            check(crm.marketing().segments().count(rule) == 1UL) { "count" }
            val everyone = "NOT tag:雅思学员"
            val firstMembers = crm.marketing().segments().membersPage(everyone, PageRequest(limit = 1u))
            val restMembers = crm.marketing().segments().membersPage(everyone, PageRequest(after = firstMembers.next, limit = 1u))
            check(firstMembers.items.size == 1 && restMembers.items.size == 1 && restMembers.next == null) { "pages $firstMembers $restMembers" }
            check(firstMembers.items.map { it.name } + restMembers.items.map { it.name } == crm.marketing().segments().members(everyone).map { it.name }) { "paged members" }
            val why = crm.marketing().segments().explain(li.id, rule)
            check(!why[0].holds && why[1].depth == 1u && why[1].count == 2UL) { "explain $why" }
            val syntax = assertThrows<CrmException.Validation> { crm.marketing().segments().members("tag:VIP AND\n  status >") }
            check(syntax.errors.single().field == "segment" && "line 2, column 11" in syntax.errors.single().reason) { "syntax ${syntax.errors}" }
            check(crm.marketing().settings().eventRetentionDays == null) { "settings" }
            crm.marketing().setSettings(MarketingSettings(eventRetentionDays = 10u))
            val tooOld = assertThrows<CrmException.Validation> { crm.marketing().events().record(listOf(view(wang, 11))) }
            check(tooOld.errors.single().field == "events[0].at") { "retention ${tooOld.errors}" }
            val purged = crm.marketing().events().purge()
            check(purged.purged == 1UL && purged.before != null) { "purged $purged" }
        }
    },
    "a saved segment keeps its members and dynamic tag as events arrive; references, cycles, history" to {
        Crm.inMemory("alice").use { crm ->
            val day = 86_400L
            val now = Instant.now()
            val wang = crm.customers().create(NewCustomer(name = "王芳", kind = CustomerKind.INDIVIDUAL))
            val li = crm.customers().create(NewCustomer(name = "李娜", kind = CustomerKind.INDIVIDUAL, tags = listOf("VIP")))
            val segments = crm.marketing().segments()
            val rule = "count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3 AND count(event = enroll) = 0"
            val saved = segments.save(SavedSegment(name = "雅思意向", expression = rule, tag = "雅思意向"))
            check(saved.tag == "雅思意向" && !saved.sticky) { "saved $saved" }
            fun view(daysAgo: Long) = BehaviourEvent(customerId = wang.id, name = "page_view",
                at = now.minusSeconds(daysAgo * day), properties = mapOf("url" to CustomValue.Text("/ielts")))
            crm.marketing().events().record(listOf(view(1), view(2), view(3)))
            val current = segments.current("雅思意向", PageRequest(limit = 10u))
            check(current.items.map { it.customerId to it.enteredBecause } == listOf(wang.id to MembershipReason.MATCHED)) { "current $current" }
            check("雅思意向" in crm.customers().get(wang.id).tags) { "dynamic tag added" }
            crm.marketing().events().record(listOf(BehaviourEvent(customerId = wang.id, name = "enroll", at = now)))
            check(segments.current("雅思意向", PageRequest(limit = 10u)).items.isEmpty()) { "left on enrolling" }
            check("雅思意向" !in crm.customers().get(wang.id).tags) { "dynamic tag removed" }
            val stays = segments.history("雅思意向", wang.id, PageRequest(limit = 10u)).items
            check(stays.single().exitedBecause == MembershipReason.NO_LONGER_MATCHES && stays.single().exitedAt != null) { "history $stays" }
            segments.include("雅思意向", listOf(li.id))
            check(segments.get("雅思意向").includes == listOf(li.id)) { "included" }
            check(segments.reevaluate("雅思意向").entered.isEmpty() && segments.reevaluateDue().exited.isEmpty()) { "nothing to do" }
            check(segments.current("雅思意向", PageRequest(limit = 10u)).items.single().enteredBecause == MembershipReason.INCLUDED) { "included member" }
            segments.exclude("雅思意向", listOf(li.id))
            segments.resetManual("雅思意向", listOf(li.id))
            segments.save(SavedSegment(name = "vip", expression = "tag:VIP"))
            segments.save(SavedSegment(name = "vip_ielts", expression = "segment:vip AND segment:雅思意向"))
            check(segments.list().map { it.name } == listOf("vip", "vip_ielts", "雅思意向")) { "list" }
            val cycle = assertThrows<CrmException.Validation> { segments.save(SavedSegment(name = "vip", expression = "segment:vip_ielts")) }
            check("cycle" in cycle.errors.single().reason) { "cycle ${cycle.errors}" }
            segments.delete("vip_ielts")
            assertThrows<CrmException.NotFound> { segments.get("vip_ielts") }
            // A segment built as a typed tree (pre-order nodes) instead of text.
            val tree = listOf(
                SegmentNode.And(2u),
                SegmentNode.Tag("VIP"),
                SegmentNode.Count(CountOf.Event("page_view"),
                    listOf(PropertyTest("url", CmpOp.CONTAINS, SegmentValue.One(SegmentScalar.Text("ielts")))), 30u, CmpOp.GE, 3uL),
            )
            val text = segments.toText(tree)
            check(segments.parse(text) == tree) { "tree round trip $text" }
            check(segments.count(text) == 0UL) { "tree evaluated" }
            val short = assertThrows<CrmException.Validation> { segments.toText(listOf(SegmentNode.Or(2u), SegmentNode.Tag("VIP"))) }
            check(short.errors.single().field == "segment") { "short ${short.errors}" }
            val field = assertThrows<CrmException.Validation> {
                segments.toText(listOf(SegmentNode.Not, SegmentNode.Field("colour", CmpOp.EQ, SegmentValue.One(SegmentScalar.Text("red")))))
            }
            check(field.errors.single().field == "segment[1].field") { "field ${field.errors}" }
        }
    },
    "identifiers checked by scheme, stored, replaced and matched whatever the name" to {
        Crm.inMemory("alice").use { crm ->
            val bad = assertThrows<CrmException.Validation> {
                crm.customers().create(NewCustomer(name = "华为技术有限公司", identifiers = listOf(
                    Identifier(IdScheme.USCC, "914403001922038217"), Identifier(IdScheme.PASSPORT, "x"))))
            }
            check(bad.errors.map { it.field } == listOf("identifiers[0]", "identifiers[1]")) { "errors ${bad.errors}" }
            val c = crm.customers().create(NewCustomer(name = "华为技术有限公司", identifiers = listOf(
                Identifier(IdScheme.PASSPORT, "e 1234 5678"), Identifier(IdScheme.USCC, "9144 0300 1922 0382 16"))))
            check(c.identifiers == listOf(Identifier(IdScheme.USCC, "914403001922038216"), Identifier(IdScheme.PASSPORT, "E12345678"))) { "stored ${c.identifiers}" }
            val found = crm.duplicates().find(NewCustomer(name = "深圳某某通信", identifiers = listOf(Identifier(IdScheme.OTHER, "914403001922038216"))))
            check(found.map { it.id } == listOf(c.id) && found[0].reasons[0].field == MatchField.Identifier(null)) { "found $found" }
            val replaced = crm.customers().update(c.id, c.version, CustomerPatch(identifiers = listOf(Identifier(IdScheme.OTHER, "DUNS 123456789"))))
            check(replaced.identifiers == listOf(Identifier(IdScheme.OTHER, "DUNS 123456789"))) { "replaced ${replaced.identifiers}" }
            check(crm.customers().update(c.id, replaced.version, CustomerPatch(identifiers = emptyList())).identifiers.isEmpty()) { "cleared" }
        }
    },
    "match rules as typed settings, linking two sources, training and the blocking report" to {
        Crm.inMemory("alice").use { crm ->
            crm.customFields().create(CustomField(entity = EntityKind.CUSTOMER, key = "date_of_birth", label = "出生日期", fieldType = FieldType.DATE))
            val defaults = crm.duplicates().rules()
            check(defaults.scoring == Scoring.Weighted && defaults.rules.any { it.field == MatchField.Identifier(null) }) { "defaults $defaults" }
            val wrong = defaults.rules + MatchRule(field = MatchField.Phone, comparison = Comparison.Date(0.9), weight = 1.0, only = null)
            val bad = assertThrows<CrmException.Validation> { crm.duplicates().setRules(defaults.copy(rules = wrong, threshold = 0.0)) }
            check(bad.errors.map { it.field }.toSet() == setOf("rules[${wrong.size - 1}].comparison", "threshold")) { "errors ${bad.errors}" }
            val dob = MatchField.Custom("date_of_birth")
            val people = MatchRules(
                rules = listOf(
                    MatchRule(MatchField.GivenName, Comparison.JaroWinkler(0.85), 1.0, null),
                    MatchRule(MatchField.Surname, Comparison.JaroWinkler(0.85), 1.0, null),
                    MatchRule(dob, Comparison.Date(0.9), 1.0, null),
                    MatchRule(MatchField.Address, Comparison.QGram(0.7), 1.0, null),
                ),
                threshold = 0.5,
                scoring = Scoring.Probabilistic(null),
                blocking = Blocking(keys = listOf(BlockingKey.Exact(MatchField.Surname)), maxBlock = 100u),
            )
            check(crm.duplicates().setRules(people) == people && crm.duplicates().rules() == people) { "stored" }
            fun person(name: String, born: LocalDate, address: String, source: String) = crm.customers().create(
                NewCustomer(name = name, kind = CustomerKind.INDIVIDUAL, address = address, tags = listOf(source), custom = mapOf("date_of_birth" to CustomValue.Date(born)))
            )
            val ann = person("Ann Lee", LocalDate.of(1980, 3, 7), "12 Ocean Street Sydney", "crm")
            val anne = person("Anne Lee", LocalDate.of(1980, 7, 3), "12 Ocean St Sydney", "shop")
            val bob = person("Bob Stone", LocalDate.of(1975, 1, 2), "9 Hill Road Perth", "crm")
            val bob2 = person("Bob Stone", LocalDate.of(1975, 1, 2), "9 Hill Road Perth", "shop")
            val carl = person("Carl Wu", LocalDate.of(1990, 5, 5), "1 King Street Hobart", "crm")
            person("Eve Hart", LocalDate.of(1968, 2, 2), "7 Bay Road Cairns", "shop")
            val linked = crm.duplicates().link(CustomerFilter(tags = listOf("crm")), CustomerFilter(tags = listOf("shop")))
            check(linked.clusters.map { it.members.toSet() }.toSet() == setOf(setOf(ann.id, anne.id), setOf(bob.id, bob2.id))) { "linked $linked" }
            check(linked.estimated != null) { "estimated" }
            val reasons = linked.clusters.flatMap { it.links }.flatMap { it.to.reasons }
            check(reasons.any { it.field == dob && it.matchWeight != null && it.text.contains(": +") }) { "weights $reasons" }
            val trained = crm.duplicates().train(CustomerFilter())
            check((trained.scoring as Scoring.Probabilistic).model!!.fields.size == 4) { "trained $trained" }
            crm.duplicates().markNotDuplicate(carl.id, bob.id)
            val learned = crm.duplicates().learn(listOf(KnownPair(ann.id, anne.id), KnownPair(bob.id, bob2.id)))
            val model = (learned.scoring as Scoring.Probabilistic).model!!
            check(model.fields[1].m > model.fields[1].u) { "learned $model" }
            crm.duplicates().setRules(trained)
            val report = crm.duplicates().blockingReport(listOf(KnownPair(ann.id, anne.id), KnownPair(carl.id, bob.id)))
            check(report.known == 2UL && report.compared == 1UL && report.missed == listOf(KnownPair(carl.id, bob.id))) { "report $report" }
            crm.duplicates().setRules(defaults)
            val me = NewCustomer(name = "", kind = CustomerKind.INDIVIDUAL, contacts = listOf(NewContact(name = "本人", phones = listOf("13812345678"))))
            val nameless = crm.customers().create(me)
            check(nameless.name == "" && crm.duplicates().find(me).map { it.id } == listOf(nameless.id)) { "a person known by a phone alone" }
        }
    },
    "merge with a plan, tombstones and undo" to {
        Crm.inMemory("alice").use { crm ->
            val a = crm.customers().create(NewCustomer(name = "星河科技", contacts = listOf(NewContact(name = "张伟"))))
            val b = crm.customers().create(
                NewCustomer(name = "星河科技有限公司", address = "北京市海淀区", tags = listOf("VIP"), contacts = listOf(NewContact(name = "李娜")))
            )
            val request = MergeRequest(survivor = a.id, merged = listOf(b.id), policy = Survivorship.MOST_COMPLETE)
            val plan = crm.duplicates().planMerge(request)
            check(plan.survivor.address == "北京市海淀区" && plan.tagsAdded == listOf("VIP") && plan.contacts.size == 1) { "plan $plan" }
            check(crm.contacts().list(a.id).size == 1) { "a plan writes nothing" }
            val done = crm.duplicates().merge(request)
            check(crm.contacts().list(a.id).size == 2 && crm.duplicates().mergedInto(b.id) == a.id) { "merged" }
            assertThrows<CrmException.NotFound> { crm.customers().get(b.id) }
            crm.duplicates().undoMerge(done.mergeId)
            check(crm.duplicates().mergedInto(b.id) == null && crm.contacts().list(b.id).single().name == "李娜") { "undone" }
            check("VIP" !in crm.customers().get(a.id).tags) { "survivor lost the merged tag" }
            assertThrows<CrmException.InvalidState> { crm.duplicates().undoMerge(done.mergeId) }
        }
    },
    "import with errors, policies, progress; export that imports back" to {
        Crm.inMemory("alice").use { crm ->
            val file = "客户名称,手机,省份\n好公司,13800000001,广东\n坏电话,12345,\n".toByteArray(charset("GBK"))
            val none = crm.files().importCustomers(file, ImportOptions())
            check(!none.committed && none.rejected.single().row == 3UL && none.rejected.single().column == "手机") { "rejected $none" }
            check(crm.customers().count(CustomerFilter()) == 0UL) { "all or nothing" }
            val seen = mutableListOf<Pair<ULong, ULong>>()
            val listener = object : ImportProgressListener {
                override fun onProgress(done: ULong, total: ULong) { seen.add(done to total) }
            }
            val good = crm.files().importCustomersWithProgress(file, ImportOptions(mode = ImportMode.KEEP_GOOD), listener)
            check(good.committed && good.created.size == 1 && seen.last() == (2UL to 2UL)) { "keep good $good $seen" }
            val rerun = crm.files().importCustomers(file, ImportOptions(mode = ImportMode.KEEP_GOOD))
            check(rerun.created.isEmpty() && rerun.skipped.size == 2) { "re-run $rerun" }
            val mapped = crm.files().importCustomers(
                "公司,来源\n好公司有限公司,官网\n".toByteArray(),
                ImportOptions(columns = mapOf("公司" to "name"), onDuplicate = DuplicatePolicy.UPDATE),
            )
            check(mapped.updated.size == 1 && crm.customers().get(mapped.updated[0]).source == "官网") { "update $mapped" }
            val template = importTemplate(FileFormat.XLSX)
            check(template[0] == 'P'.code.toByte() && template[1] == 'K'.code.toByte()) { "xlsx template" }
            val out = Files.createTempDirectory("guanxi").resolve("customers.csv")
            check(crm.files().exportToPath(out.toString(), ExportEntity.CUSTOMERS, CustomerFilter(), FileFormat.CSV) == 1UL) { "export" }
            val back = crm.files().importCustomers(Files.readAllBytes(out), ImportOptions())
            check(back.created.isEmpty() && back.skipped.size == 1) { "export imports back $back" }
        }
    },
    "handles close with use {} and files persist, at either durability" to {
        val dir = Files.createTempDirectory("guanxi")
        val path = dir.resolve("crm.db").toString()
        val crm = Crm.open(path, "alice")
        val code = crm.use { huawei(it).code }
        assertThrows<IllegalStateException> { crm.customers().getByCode(code) }
        // Reopened with the faster commit durability: the data is the same file's.
        Crm.openWith(path, "bob", durability = Durability.NORMAL).use { again ->
            val c = again.customers().getByCode(code)
            check(c.createdBy == "alice") { "created by ${c.createdBy}" }
            check(again.audit().entries(c.id.toString()).map { it.action } == listOf(ChangeAction.CREATE)) { "change log" }
            // Logged values are typed, not JSON text.
            val fields = again.audit().entries(c.id.toString()).single().changes.associate { it.field to it.new }
            check(fields["name"] == LoggedValue.Text("华为技术有限公司")) { "name ${fields["name"]}" }
            check(fields["tags"] == LoggedValue.Items(listOf(LoggedValue.Text("VIP")))) { "tags ${fields["tags"]}" }
            check(fields["region"] is LoggedValue.Fields) { "region ${fields["region"]}" }
        }
    },
    "the catalog syncs once, purchases move the level, imports name every bad cell" to {
        val rule = LevelRule(field = "spend_12m", aMin = BigDecimal(500_000), bMin = BigDecimal(100_000), currency = "CNY")
        Crm.inMemoryWith("alice", levelRule = rule).use { crm ->
            val products = crm.commerce().products()
            fun product(code: String, name: String, price: Long) = NewProduct(code = code, name = name, category = "软件",
                prices = listOf(Price(currency = "CNY", amount = BigDecimal(price))), taxRate = BigDecimal(13), externalId = "erp-$code")
            val first = products.sync(listOf(product("SKU-1", "CRM 授权", 1999), product("SKU-2", "实施服务", 3000)))
            check(first.created == 2UL && first.outcomes == listOf(SyncOutcome.CREATED, SyncOutcome.CREATED)) { "sync $first" }
            val again = products.sync(listOf(product("SKU-1", "CRM 授权", 1999), product("SKU-2", "实施服务", 3000)))
            check(again.unchanged == 2UL && again.ids == first.ids) { "again $again" }
            check(products.getByCode("SKU-2").prices.single().amount.compareTo(BigDecimal(3000)) == 0) { "price" }
            val bad = assertThrows<CrmException.Validation> { products.sync(listOf(product("", "无编码", 1), product("SKU-3", "x", -1))) }
            check(bad.errors.map { it.field } == listOf("products[0].code", "products[1].prices[0].amount")) { "bad ${bad.errors}" }
            val page = products.list(ProductFilter(active = true), PageRequest(limit = 1u))
            check(page.items.size == 1 && page.next != null && products.count(ProductFilter()) == 2UL) { "page $page" }
            val c = crm.customers().create(NewCustomer(name = "甲公司"))
            val line = ProductLine(product = "SKU-2", productCode = "SKU-2", quantity = BigDecimal(40), unitPrice = BigDecimal(3000), discount = BigDecimal.ZERO)
            val order = NewPurchase(customerId = c.id, at = Instant.now().minusSeconds(86_400), amount = null, currency = "CNY",
                lines = listOf(line), channel = "电话", sourceSystem = "erp", externalId = "SO-1", status = PurchaseStatus.PAID)
            val recorded = crm.commerce().purchases().record(listOf(order))
            check(recorded.created == 1UL && crm.commerce().purchases().record(listOf(order)).unchanged == 1UL) { "recorded $recorded" }
            val bought = crm.customers().get(c.id)
            check(bought.level == Level.B && bought.custom["spend_12m"] == CustomValue.Decimal(BigDecimal(120_000))) { "level ${bought.level} ${bought.custom}" }
            val p = crm.commerce().purchases().get(recorded.ids[0])
            check(p.lines[0].product == "实施服务" && p.amount.compareTo(BigDecimal(120_000)) == 0) { "purchase $p" }
            val refunded = crm.commerce().purchases().refund(p.id, p.version)
            check(refunded.status == PurchaseStatus.REFUNDED && crm.customers().get(c.id).level == Level.C) { "refund $refunded" }
            val mine = crm.commerce().purchases().list(PurchaseFilter(customerId = c.id), PageRequest())
            check(mine.items.size == 1 && crm.commerce().purchases().count(PurchaseFilter(status = PurchaseStatus.PAID)) == 0UL) { "list $mine" }
            check(crm.commerce().purchases().refreshLevels() == 0UL) { "refresh" }
            val file = "客户编号,下单时间,金额,订单号\n${c.code},2024-05-06 10:30,1999.00,SO-9\n${c.code},2024-05-07,abc,SO-10\n"
            val report = crm.commerce().importPurchases(file.toByteArray(), CommerceImportOptions(mode = ImportMode.KEEP_GOOD, sourceSystem = "erp"))
            check(report.sync.created == 1UL && report.rejected.single().column == "金额" && report.rejected.single().row == 3UL) { "import $report" }
            val catalog = "product,series,sales_price\nGTX Basic,GTX,550\n"
            val mapped = CommerceImportOptions(columns = listOf(ColumnMapping("product", "code"), ColumnMapping("series", "category"), ColumnMapping("sales_price", "price")))
            check(crm.commerce().importProducts(catalog.toByteArray(), mapped).sync.created == 1UL) { "catalog import" }
        }
    },
    "analytics: purchase summaries, RFM with its segments, lifetime value" to {
        Crm.inMemory("alice").use { crm ->
            val day = 86_400L
            val now = Instant.now()
            for (i in 0 until 30) {
                val c = crm.customers().create(NewCustomer(name = "客户$i"))
                val orders = (0..(i % 4)).map { k ->
                    NewPurchase(customerId = c.id, at = now.minusSeconds((3L * i + 11L * k + 1) * day), amount = BigDecimal(100 + 10 * i),
                        currency = "CNY", lines = listOf(), channel = null, sourceSystem = null, externalId = null, status = PurchaseStatus.PAID)
                }
                crm.commerce().purchases().record(orders)
            }
            val summaries = crm.analytics().customerPurchases(PurchaseFilter(), "CNY")
            check(summaries.size == 30 && summaries.all { it.total > BigDecimal.ZERO }) { "summaries ${summaries.size}" }
            val config = crm.analytics().defaultRfmConfig()
            val scores = crm.analytics().rfm(PurchaseFilter(), "CNY", config)
            check(scores.size == 30 && scores.all { it.r in 1u..5u && it.segment.isNotEmpty() }) { "rfm $scores" }
            val ltv = crm.analytics().lifetimeValue(PurchaseFilter(), LifetimeValueOptions())
            check(ltv.customers.size == 30 && ltv.customers.all { it.pAlive in 0.0..1.0 } && ltv.spend != null) { "ltv ${ltv.purchases}" }
            val bad = assertThrows<CrmException.Validation> { crm.analytics().rfm(PurchaseFilter(), "CNY", config.copy(bins = 1u)) }
            check(bad.errors.first().field == "bins") { "bins ${bad.errors}" }
        }
    },
)

fun main() {
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            passed++
            println("PASS $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
        }
    }
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) exitProcess(1)
}
